// Package quarantine is the endpoint agent's quarantine: where a detected
// file goes so that it can no longer run, be opened or be picked up by
// another scanner, yet can be put back exactly as it was when the
// detection turns out to be wrong, or handed to the server's lab as a
// sample.
//
// # What it owns
//
// One directory (0700): a 32-byte random key file ("key", 0600, created on
// first use and never replaced) and one file per entry ("<id>.mq", 0600,
// never executable). An entry holds the original bytes encrypted with
// AES-256-GCM and the metadata needed to restore them — path, mode,
// owner, size, sha256, modification time, and why it was quarantined.
// Nothing else in the directory is an entry.
//
// # Why it is built this way
//
// Encryption here is neutering and tamper evidence, not secrecy from root:
// the key sits next to the entries. It keeps the malware's bytes out of
// reach of anything that reads files — other antivirus products, indexers,
// backup scanners, a user double-clicking — and it makes any change to an
// entry detectable (ErrTampered), so Restore never writes back something
// other than what was taken. The metadata is sealed too and is the body's
// additional data, so an entry's path cannot be edited to make Restore
// write the bytes somewhere else, nor can two entries' bodies be swapped.
// Each entry has its own key (HKDF from the store key and a random salt)
// and is encrypted in 64 KiB chunks, so memory stays flat for large files,
// Open can stream a sample, and a truncated entry is caught.
//
// Losing a file is worse than failing to quarantine it. Put writes the
// entry to a temporary file, syncs it, renames it into place and syncs the
// directory before it removes the original, and removes the original only
// if it is still the file that was read (same inode, size, modification
// time). A crash at any point leaves the original, or the entry, or both —
// never neither; Open deletes half-written temporaries from an earlier
// crash. Restore mirrors this: a temporary file next to the target,
// verified, renamed into place, and only then the entry deleted.
//
// Put refuses directories, symbolic links (quarantining through a link is
// a classic way to make a cleaner remove a system file), devices, pipes
// and files over MaxSize (default 256 MiB): ErrNotRegular, ErrTooLarge.
// What may be quarantined at all (system binaries, the agent itself) is
// the caller's policy; see internal/agent/cleanup.
//
// Not kept: Windows owners and ACLs, extended attributes, other hard links
// to the same file (Put removes only the path it was given).
package quarantine
