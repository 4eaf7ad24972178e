// Package pattern owns Mamori's malware pattern engine: parsing signature
// files (ClamAV .hdb/.hsb hash, .ndb body and .ldb logical signatures, and
// Mamori's own YAML authoring form) into canonical Records, compiling
// Records into an immutable Set, and scanning files, byte slices and
// streams — including what zip, gzip, bzip2, zstd, tar and MIME mail
// containers hold — for matches. It is pure Go (no cgo) so the endpoint
// agent cross-compiles to Windows, macOS and Linux. YARA is not evaluated
// here: .yar files are recognised and reported with ErrNeedsYARA for the
// engine built with the yara tag. Signing, release channels, deltas,
// cleanup, the agent and the CLI build on this API and live elsewhere.
//
// # Records
//
// A Record is one signature in canonical single-line text
// "<kind> <name> <data>" (Record.String, ParseRecord), ordered by kind,
// name, data (CompareRecords, SortRecords). Kinds and data:
//
//	hash     <hex>:<size>|*           md5, sha1 or sha256 by hex length
//	body     <target>:<offset>:<hex>  ClamAV .ndb fields 2-4
//	logical  <tdb>;<expr>;<subsig>... ClamAV .ldb fields 2-n
//	cleanup  <opaque text>            carried through Compile, not evaluated
//
// Parsers normalise what they read (lower-case hex, {n}/{-m} gap forms,
// "Target:n" first in the target description, fully parenthesised logical
// expressions), so equal signatures have equal records. ClamAV
// functionality levels are a load-time gate (FLevel): signatures outside
// the engine's level are skipped with a warning and records do not carry
// levels.
//
// # Supported ClamAV syntax
//
// Hash lines "<hash>:<size>:<name>[:<flevel>]" in .hdb and .hsb alike, any
// of md5/sha1/sha256 by length, size "*" for any size.
//
// Body signatures "name:target:offset:hexsig[:min[:max]]" with hex bytes,
// "??", nibbles "a?"/"?a", "*", "{n}", "{n-m}", "{-n}", "{n-}", "[n-m]",
// alternatives "(aa|bbcc|d?)" of any lengths, negated single-byte or
// equal-length alternatives "!(aa|bb)". Targets 0 (any), 1 (PE), 6 (ELF)
// and 9 (Mach-O) — a file's type is recognised from its header. Offsets
// "*", "n", "n,maxshift", "EOF-n[,maxshift]" and, for target 1,
// "EP+n", "EP-n", "Sx+n", "SL+n" (with ",maxshift"); the PE entry point
// and sections are mapped to file offsets as ClamAV does (aligned raw
// addresses, last covering section).
//
// Logical signatures with target description keys Engine, Target,
// FileSize, EntryPoint and NumberOfSections; expressions with "&", "|",
// parentheses and counts "=n", ">n", "<n" on subsignatures and groups
// (groups also ">n,m": m distinct subsignatures), grouped exactly as
// ClamAV does; subsignatures "[offset:]hexsig[::aiwf]" (ascii, nocase,
// wide, fullword).
//
// Skipped with ErrUnsupported, per signature: other targets (OLE2, HTML,
// mail, PDF, ... ClamAV applies them to normalised or extracted content),
// offsets SEx and VI and macros, boundary markers (B)/(L)/(W), PCRE,
// byte-compare, image fuzzy-hash and macro subsignatures, Container/
// Intermediates/IconGroup/HandlerType conditions, logical expressions that
// hold when nothing matches. Dropping an unsupported condition would make
// a signature match more than its author meant, so such signatures are
// never evaluated partially. Skipped per file: .mdb/.msb section hashes,
// .imp, .idb, .cbc, .crb, .pdb/.wdb/.gdb, .fp/.sfp/.ign2, .cvd/.cld (unpack
// them first).
//
// Every parser reports a skipped line as a Warning (file, line, name,
// reason wrapping ErrSyntax, ErrUnsupported, ErrLimit or ErrNeedsYARA) and
// loads the rest of the file.
//
// # YAML authoring form
//
// Files named *.patterns.yaml / *.patterns.yml in a directory (or any
// .yaml/.yml file named explicitly) hold a list of entries:
//
//	# local.patterns.yaml
//	- name: Local.Eicar.Hash
//	  hashes:                           # one hash record each
//	    - 44d88612fea8a8f36de82e1278abb02f:68
//	    - 3395856ce81f2b7382dee72602f798b642f14140   # no size: any size
//	- name: Local.Eicar.Body
//	  body: "58354f21 5025 4041 50??"   # ClamAV hex syntax, blanks ignored
//	  offset: "0"                       # ClamAV offset, default "*"
//	  target: pe                        # any (default) | pe | elf | macho
//	- name: Local.Eicar.Logical
//	  logical: "0&1"                    # ClamAV logical expression
//	  subsigs: ["45494341522d", "0:414e5449::i"]
//	  conditions: "FileSize:0-4096"     # other target description keys
//	- name: Local.Eicar.Clean
//	  cleanup: "quarantine"             # reserved: carried, not evaluated
//
// An entry may combine hashes, body, logical and cleanup under one name;
// each yields its own record(s). WriteYAML writes records back in this
// form, and parsing that output yields the same records.
//
// # Matching
//
// Hash signatures sit in per-type tables sorted by digest. A type is only
// computed for an object when a signature of that type could match: one
// with a wildcard size, or with exactly the object's size (objects of
// unknown size are hashed speculatively until they outgrow the largest
// size of that type).
//
// Body patterns are split at unbounded gaps into segments of bounded span
// (at most 64 KiB). Each segment contributes its most informative window
// of 4 fixed bytes (nibbles and small alternatives expand to at most 16
// keys; segments with only 2-3 consecutive fixed bytes use a 2-byte table)
// to one prefilter: a bitmap over a multiplicative hash of every 4-byte
// window of the data, then an exact table. Its cost per byte does not
// depend on the number of signatures. A hit verifies the segment around
// the anchor (fixed parts directly, variable gaps by tracking reachable
// positions, never exponential backtracking) under the offset constraint;
// a pattern's segments must be found in order, each after the previous
// one's earliest end, so a pattern is matched in one streaming pass.
// Patterns anchored to the end of the object (EOF-n, n <= 256 KiB) are
// matched in a second pass over the retained tail.
//
// Objects are streamed, never read whole: the window holds a 256 KiB
// chunk plus the bytes verification may need around it (bounded by the
// longest segment) and the tail for EOF patterns. Only zips nested inside
// another container are held in memory (Limits.MaxInMemory). Memory per
// running scan is therefore about one window per open nesting level, 4
// bytes per compiled pattern for hit bookkeeping, decompressor state
// (zstd windows are capped at 16 MiB) and at most one in-memory zip per
// level; a compiled Set costs roughly 100 bytes per hash signature.
//
// # Containers and limits
//
// zip (stored, deflate), gzip, bzip2, zstd, tar (POSIX, GNU, V7) and mail
// (RFC 5322 messages, mbox, MIME multipart, base64 and quoted-printable)
// are opened recursively. Each object is scanned both raw and, if a
// container, member by member; detections carry the member path
// ("eicar.tar.gz!eicar.tar!eicar.com", the middle name being the gzip
// member). Limits (depth, total extracted bytes, compression ratio, files
// per archive, members per top-level object, bytes body-scanned per
// object, in-memory zips; see Limits for defaults) stop extraction where
// they are hit, and each breach is reported as a Detection of KindLimit.
// Encrypted zip entries and unsupported zip methods are reported the same
// way. An object cut short (limit or corrupt stream)
// is not hash-matched, its EOF patterns are not evaluated, and only
// logical signatures that more data could not falsify may alert.
//
// Scanner methods are safe for concurrent use; Walk scans a directory tree
// with a pool of workers.
package pattern
