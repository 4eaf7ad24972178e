package update

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
)

// Records is the content of a release: opaque one-line records. In canonical
// form (see [Canonical]) it is sorted by bytes.Compare and free of
// duplicates, so two sets with the same members have the same bytes and the
// same [ContentHash]. Records handed to or returned by this package are
// treated as immutable: slices are shared between versions instead of being
// copied, so callers must not modify them.
type Records [][]byte

// MaxRecordLen bounds one record. Signatures are a few hundred bytes; the
// bound keeps a hostile or buggy producer from making one line the size of
// the whole blob.
const MaxRecordLen = 64 << 10

// Canonical returns recs sorted and de-duplicated, without modifying recs
// (only the slice headers are copied). A record must be non-empty, at most
// MaxRecordLen bytes and contain no '\n': the canonical content is the
// records joined by '\n', so a newline inside one would change the set.
func Canonical(recs Records) (Records, error) {
	for i, r := range recs {
		if err := checkRecord(r); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	out := slices.Clone(recs)
	if !isCanonical(out) {
		slices.SortFunc(out, bytes.Compare)
		out = slices.CompactFunc(out, bytes.Equal)
	}
	return out, nil
}

func checkRecord(r []byte) error {
	switch {
	case len(r) == 0:
		return fmt.Errorf("%w: empty record", ErrInvalid)
	case len(r) > MaxRecordLen:
		return fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(r), MaxRecordLen)
	case bytes.IndexByte(r, '\n') >= 0:
		return fmt.Errorf("%w: record contains a newline", ErrInvalid)
	}
	return nil
}

// isCanonical reports whether recs is strictly ascending, which is both
// sorted and duplicate-free.
func isCanonical(recs Records) bool {
	for i := 1; i < len(recs); i++ {
		if bytes.Compare(recs[i-1], recs[i]) >= 0 {
			return false
		}
	}
	return true
}

// ContentHash is the sha256 of the canonical content: every record followed
// by '\n'. recs must already be canonical.
func ContentHash(recs Records) [32]byte {
	h := sha256.New()
	// Batching through a buffer: one Write per record would cost more than
	// the hashing itself for short lines.
	buf := make([]byte, 0, 64<<10)
	for _, r := range recs {
		if len(buf)+len(r)+1 > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		if len(r)+1 > cap(buf) {
			h.Write(r)
			h.Write([]byte{'\n'})
			continue
		}
		buf = append(buf, r...)
		buf = append(buf, '\n')
	}
	h.Write(buf)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Size is the length in bytes of the canonical content.
func (r Records) Size() int {
	n := 0
	for _, l := range r {
		n += len(l) + 1
	}
	return n
}

// DiffRecords returns the records of from that are not in to (removed) and
// those of to that are not in from (added), both canonical. from and to
// must be canonical.
func DiffRecords(from, to Records) (removed, added Records) {
	i, j := 0, 0
	for i < len(from) && j < len(to) {
		switch c := bytes.Compare(from[i], to[j]); {
		case c == 0:
			i++
			j++
		case c < 0:
			removed = append(removed, from[i])
			i++
		default:
			added = append(added, to[j])
			j++
		}
	}
	removed = append(removed, from[i:]...)
	added = append(added, to[j:]...)
	return removed, added
}

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidChannel reports whether name can be a channel: it appears in target
// paths and URLs, so it is restricted to lower-case letters, digits and '-'.
func ValidChannel(name string) error {
	if !channelRE.MatchString(name) {
		return fmt.Errorf("%w: channel %q (want %s)", ErrInvalid, name, channelRE)
	}
	return nil
}
