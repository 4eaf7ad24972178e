package pattern

// Turning parsed hex tokens into compiled segments.

type bodyMods struct {
	nocase   bool
	wide     bool
	fullword bool
}

func byteElem(t tok, nocase bool) celem {
	switch t.kind {
	case tkHiNib:
		return celem{kind: ceByte, mask: 0xf0, val: t.b & 0xf0}
	case tkLoNib:
		return celem{kind: ceByte, mask: 0x0f, val: t.b & 0x0f}
	case tkAny:
		return celem{kind: ceByte}
	}
	b := t.b
	if nocase && (b|0x20 >= 'a' && b|0x20 <= 'z') {
		s := new(byteSet)
		s.add(b | 0x20)
		s.add(b &^ 0x20)
		return celem{kind: ceSet, set: s}
	}
	return celem{kind: ceByte, mask: 0xff, val: b}
}

var zeroElem = celem{kind: ceByte, mask: 0xff, val: 0}

// item is a compiled element or an unbounded separator.
type item struct {
	sep    bool
	sepMin int
	e      celem
}

func altElems(seq []tok, m bodyMods) []celem {
	out := make([]celem, 0, len(seq)*2)
	for _, t := range seq {
		out = append(out, byteElem(t, m.nocase))
		if m.wide {
			out = append(out, zeroElem)
		}
	}
	return out
}

func tokItems(toks []tok, m bodyMods) []item {
	mul := 1
	if m.wide {
		mul = 2
	}
	out := make([]item, 0, len(toks)*mul)
	for _, t := range toks {
		switch t.kind {
		case tkByte, tkHiNib, tkLoNib:
			out = append(out, item{e: byteElem(t, m.nocase)})
			if m.wide {
				out = append(out, item{e: zeroElem})
			}
		case tkAny:
			out = append(out, item{e: celem{kind: ceGap, min: mul, max: mul}})
		case tkGap:
			if t.max < 0 {
				out = append(out, item{sep: true, sepMin: t.min * mul})
			} else {
				out = append(out, item{e: celem{kind: ceGap, min: t.min * mul, max: t.max * mul}})
			}
		case tkStar:
			out = append(out, item{sep: true})
		case tkAlt:
			single := true
			for _, a := range t.alts {
				if len(a) != 1 {
					single = false
				}
			}
			if single {
				s := new(byteSet)
				for _, a := range t.alts {
					e := byteElem(a[0], m.nocase)
					for c := 0; c < 256; c++ {
						if e.matchByte(byte(c)) {
							s.add(byte(c))
						}
					}
				}
				if t.neg {
					for i := range s {
						s[i] = ^s[i]
					}
				}
				out = append(out, item{e: celem{kind: ceSet, set: s}})
				if m.wide {
					out = append(out, item{e: zeroElem})
				}
				continue
			}
			e := celem{kind: ceAlt, neg: t.neg, min: 1 << 30}
			for _, a := range t.alts {
				es := altElems(a, m)
				e.alts = append(e.alts, es)
				e.min = min(e.min, len(es))
				e.max = max(e.max, len(es))
			}
			out = append(out, item{e: e})
		}
	}
	return out
}

// compileTokens builds the segments of a pattern. The returned sepMin has
// one entry per segment (sepMin[0] is 0).
func compileTokens(toks []tok, m bodyMods) ([]segment, []int, error) {
	items := tokItems(toks, m)
	if len(items) == 0 {
		return nil, nil, syntaxf("empty pattern")
	}
	if items[0].sep || items[len(items)-1].sep {
		return nil, nil, syntaxf("pattern starts or ends with an unbounded gap")
	}
	var (
		segs   []segment
		sepMin []int
		cur    = make([]celem, 0, len(items))
		curSep int // minimum distance before the segment being built
	)
	flush := func() error {
		if len(cur) == 0 {
			return syntaxf("empty part between unbounded gaps")
		}
		s, err := newSegment(cur)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		sepMin = append(sepMin, curSep)
		cur = cur[len(cur):]
		return nil
	}
	for i := 0; i < len(items); i++ {
		it := items[i]
		if it.sep {
			// Bounded gaps next to an unbounded one only add to its
			// minimum distance.
			extra := 0
			for len(cur) > 0 && cur[len(cur)-1].kind == ceGap {
				extra += cur[len(cur)-1].min
				cur = cur[:len(cur)-1]
			}
			if err := flush(); err != nil {
				return nil, nil, err
			}
			curSep = extra + it.sepMin
			for i+1 < len(items) && (items[i+1].sep || items[i+1].e.kind == ceGap) {
				i++
				if items[i].sep {
					curSep += items[i].sepMin
				} else {
					curSep += items[i].e.min
				}
			}
			continue
		}
		if it.e.kind == ceGap && len(cur) > 0 && cur[len(cur)-1].kind == ceGap {
			cur[len(cur)-1].min += it.e.min
			cur[len(cur)-1].max += it.e.max
			continue
		}
		cur = append(cur, it.e)
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return segs, sepMin, nil
}
