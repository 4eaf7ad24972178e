package pattern

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind says what a Record (and the Detection it produces) is.
type Kind string

const (
	// KindHash: whole-object hash. Data: "<hex>:<size>" or "<hex>:*"; the
	// hash type follows from the hex length (32 md5, 40 sha1, 64 sha256).
	KindHash Kind = "hash"
	// KindBody: byte pattern. Data: "<target>:<offset>:<hexsig>", the
	// ClamAV .ndb line without its name and functionality levels.
	KindBody Kind = "body"
	// KindLogical: logical signature. Data: "<tdb>;<expression>;<subsig>...",
	// the ClamAV .ldb line without its name, with a normalised target
	// description block (Target first, no Engine).
	KindLogical Kind = "logical"
	// KindCleanup is reserved for remediation instructions. This package
	// carries such records through Compile unchanged and never evaluates
	// them.
	KindCleanup Kind = "cleanup"
	// KindLimit marks a Detection that is not a signature match but a scan
	// limit that stopped part of the scan (depth, size, ratio, file count).
	// Signature then names the limit, e.g. "Mamori.Limit.MaxDepth".
	KindLimit Kind = "limit"
)

// Record is the unit signatures are stored, shipped and diffed as: one
// signature in a canonical single-line text form (see String). Parsers turn
// every supported signature file format into Records; Compile turns Records
// into a Set. Two Records are the same signature when Kind, Name and Data
// are equal.
type Record struct {
	Kind Kind
	Name string
	Data string
	// File and Line locate where the record was read, for warnings only;
	// they are not part of the record's identity or canonical text.
	File string
	Line int
}

// String returns the canonical text "<kind> <name> <data>".
func (r Record) String() string {
	return string(r.Kind) + " " + r.Name + " " + r.Data
}

// ParseRecord parses the canonical text produced by Record.String. It
// checks the framing only; Compile validates the data.
func ParseRecord(line string) (Record, error) {
	kind, rest, ok1 := strings.Cut(line, " ")
	name, data, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return Record{}, syntaxf("record needs \"<kind> <name> <data>\"")
	}
	r := Record{Kind: Kind(kind), Name: name, Data: data}
	if err := r.validFraming(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func (r Record) validFraming() error {
	switch r.Kind {
	case KindHash, KindBody, KindLogical, KindCleanup:
	default:
		return syntaxf("unknown record kind %q", r.Kind)
	}
	if err := validName(r.Name); err != nil {
		return err
	}
	if r.Data == "" {
		return syntaxf("empty record data")
	}
	if len(r.Data) > maxLineLen {
		return limitf("record data longer than %d bytes", maxLineLen)
	}
	for i := 0; i < len(r.Data); i++ {
		if c := r.Data[i]; c < 0x20 || c == 0x7f {
			return syntaxf("record data contains a control character")
		}
	}
	if !utf8.ValidString(r.Data) {
		return syntaxf("record data is not valid UTF-8")
	}
	return nil
}

// maxNameLen keeps names printable in one log line; ClamAV's own limit is
// in the same range.
const maxNameLen = 512

// ValidName reports why name cannot name a signature, or nil.
func ValidName(name string) error { return validName(name) }

func validName(name string) error {
	if name == "" {
		return syntaxf("empty signature name")
	}
	if len(name) > maxNameLen {
		return syntaxf("signature name longer than %d bytes", maxNameLen)
	}
	for _, c := range name {
		if c == utf8.RuneError || unicode.IsSpace(c) || unicode.IsControl(c) {
			return syntaxf("signature name %q contains white space, a control character or invalid UTF-8", name)
		}
	}
	return nil
}

// CompareRecords orders records by kind, name, then data: the stable order
// release files and deltas use.
func CompareRecords(a, b Record) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return cmp.Compare(a.Data, b.Data)
}

// SortRecords sorts records in canonical order and drops exact duplicates
// (same kind, name and data), keeping the first occurrence's location.
func SortRecords(recs []Record) []Record {
	slices.SortStableFunc(recs, CompareRecords)
	return slices.CompactFunc(recs, func(a, b Record) bool { return CompareRecords(a, b) == 0 })
}
