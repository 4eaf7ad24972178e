package vendor

import (
	"math/bits"
	"sort"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// Parsers do not write to the event directly: event.Event.Set keeps Fields
// sorted by inserting, which costs string compares and moves per field. They
// write into an out instead, addressing fields by a rank fixed at init (the
// position of the name among all names this package uses, sorted), and Parse
// commits the out to the event once, in name order, with one linear merge.
// That also means a parser that gives up half-way leaves the event alone.

// fname is a field name with its rank.
type fname struct {
	name string
	rank uint16
}

var (
	registry  []*fname // every name, in registration order
	rankNames []string // names by rank
)

// reg registers a field name; it is called from package-level var
// initializers only (see fields.go).
func reg(name string) *fname {
	f := &fname{name: name}
	registry = append(registry, f)
	return f
}

func init() {
	names := make([]string, 0, len(registry))
	seen := make(map[string]bool, len(registry))
	for _, f := range registry {
		if !seen[f.name] {
			seen[f.name] = true
			names = append(names, f.name)
		}
	}
	sort.Strings(names)
	if len(names) > maxNames {
		panic("vendor: too many field names; raise maxNames")
	}
	rank := make(map[string]uint16, len(names))
	for i, n := range names {
		rank[n] = uint16(i)
	}
	for _, f := range registry {
		f.rank = rank[f.name]
	}
	rankNames = names
}

const (
	maxNames = 512 // distinct field names in the package
	maxSlots = 96  // distinct fields one line may set
)

// out collects the fields of one parse.
type out struct {
	bits  [maxNames / 64]uint64
	pos   [maxNames]uint8 // rank → slot, valid when the bit is set
	vals  [maxSlots]string
	n     int
	ts    time.Time
	hasTS bool
}

// set records a field; an empty value is ignored and a later value replaces
// an earlier one, as with event.Event.Set.
func (o *out) set(f *fname, v string) {
	if v == "" {
		return
	}
	r := f.rank
	w, b := r>>6, uint64(1)<<(r&63)
	if o.bits[w]&b != 0 {
		o.vals[o.pos[r]] = v
		return
	}
	if o.n == maxSlots {
		return
	}
	o.bits[w] |= b
	o.pos[r] = uint8(o.n)
	o.vals[o.n] = v
	o.n++
}

// has reports whether a field was set.
func (o *out) has(f *fname) bool {
	return o.bits[f.rank>>6]&(uint64(1)<<(f.rank&63)) != 0
}

// get returns a field's value or "".
func (o *out) get(f *fname) string {
	if !o.has(f) {
		return ""
	}
	return o.vals[o.pos[f.rank]]
}

// setTime records the event time.
func (o *out) setTime(t time.Time) {
	o.ts, o.hasTS = t, true
}

// commit writes the fields to e, replacing fields of the same name, and the
// time when one was set.
func (o *out) commit(e *event.Event) {
	if o.hasTS {
		e.Timestamp = o.ts
	}
	if o.n == 0 {
		return
	}
	m := len(e.Fields)
	// Fast path: everything sorts after what e holds (typically e is empty).
	first := ""
	for w := range o.bits {
		if x := o.bits[w]; x != 0 {
			first = rankNames[w<<6+trailingZeros(x)]
			break
		}
	}
	if m == 0 || e.Fields[m-1].Name < first {
		e.Fields = growFields(e.Fields, o.n)
		for w := range o.bits {
			for x := o.bits[w]; x != 0; x &= x - 1 {
				r := w<<6 + trailingZeros(x)
				e.Fields = append(e.Fields, event.Field{Name: rankNames[r], Value: o.vals[o.pos[r]]})
			}
		}
		return
	}
	// General case: merge backwards into the grown slice; ours win on equal
	// names; the slots dup names free up are dropped at the end.
	var mine [maxSlots]event.Field
	k := 0
	for w := range o.bits {
		for x := o.bits[w]; x != 0; x &= x - 1 {
			r := w<<6 + trailingZeros(x)
			mine[k] = event.Field{Name: rankNames[r], Value: o.vals[o.pos[r]]}
			k++
		}
	}
	e.Fields = growFields(e.Fields, k)
	e.Fields = e.Fields[:m+k]
	i, j, d := m-1, k-1, m+k-1
	for j >= 0 {
		switch {
		case i >= 0 && e.Fields[i].Name > mine[j].Name:
			e.Fields[d] = e.Fields[i]
			i--
		case i >= 0 && e.Fields[i].Name == mine[j].Name:
			e.Fields[d] = mine[j]
			i--
			j--
		default:
			e.Fields[d] = mine[j]
			j--
		}
		d--
	}
	// Fields[0..i] are untouched and in place; the gap is (i, d].
	if gap := d - i; gap > 0 {
		copy(e.Fields[i+1:], e.Fields[d+1:])
		e.Fields = e.Fields[:len(e.Fields)-gap]
	}
}

func growFields(f []event.Field, n int) []event.Field {
	if cap(f)-len(f) >= n {
		return f
	}
	g := make([]event.Field, len(f), len(f)+n+8)
	copy(g, f)
	return g
}

func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }
