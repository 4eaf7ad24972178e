package sigma

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
)

// reNeeds returns lower-case literals one of which occurs in every match of
// re (ASCII case ignored), or nil when no useful set is known: the regexp's
// prefilter for the rule index. Modelled on RE2's prefilter: each node
// yields either the exact set of strings it matches (when small) or a
// necessary set; concatenations multiply exact sets ("\." then [ "'] is
// {". ", ".\"", ".'"}), and the best necessary set found anywhere in a
// concatenation is kept.
func reNeeds(re *syntax.Regexp) []string {
	inf := reInfoOf(re.Simplify())
	set := inf.need
	if inf.exact != nil {
		set = inf.exact
	}
	if !usefulNeeds(set) {
		return nil
	}
	return set
}

// maxExact bounds exact sets: beyond it a node only contributes a
// necessary set.
const maxExact = 16

// maxClass is the largest character class taken as an exact set.
const maxClass = 8

type reInfo struct {
	exact []string // every string the node matches, lower-case; nil: unknown or too many
	need  []string // one of these occurs in every match; nil: none known
}

func reInfoOf(re *syntax.Regexp) reInfo {
	switch re.Op {
	case syntax.OpLiteral:
		return reInfo{exact: []string{strings.ToLower(string(re.Rune))}}
	case syntax.OpCharClass:
		return reInfo{exact: classSet(re.Rune)}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return reInfo{exact: []string{""}}
	case syntax.OpCapture:
		return reInfoOf(re.Sub[0])
	case syntax.OpPlus:
		return reInfo{need: bestOf(reInfoOf(re.Sub[0]))}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return reInfo{need: bestOf(reInfoOf(re.Sub[0]))}
		}
	case syntax.OpQuest:
		if sub := reInfoOf(re.Sub[0]); sub.exact != nil && len(sub.exact) < maxExact {
			return reInfo{exact: dedup(append(sub.exact, ""))}
		}
	case syntax.OpAlternate:
		var exact, need []string
		allExact := true
		for _, sub := range re.Sub {
			in := reInfoOf(sub)
			if in.exact == nil {
				allExact = false
			}
			exact = append(exact, in.exact...)
			set := bestOf(in)
			if set == nil {
				need = nil
				if !allExact {
					return reInfo{}
				}
				continue
			}
			need = append(need, set...)
		}
		if allExact && len(exact) <= maxExact {
			return reInfo{exact: dedup(exact)}
		}
		if need == nil || !allNonEmpty(need) {
			return reInfo{}
		}
		return reInfo{need: dedup(need)}
	case syntax.OpConcat:
		cur := []string{""}
		var best []string
		allExact := true
		flush := func() {
			if usefulNeeds(cur) && (best == nil || betterLits(cur, best)) {
				best = cur
			}
		}
		for _, sub := range re.Sub {
			in := reInfoOf(sub)
			if in.exact != nil && len(cur)*len(in.exact) <= maxExact {
				cur = cross(cur, in.exact)
				continue
			}
			allExact = false
			flush()
			if in.need != nil && usefulNeeds(in.need) && (best == nil || betterLits(in.need, best)) {
				best = in.need
			}
			cur = []string{""}
			if in.exact != nil {
				cur = in.exact
			}
		}
		if allExact {
			return reInfo{exact: cur}
		}
		flush()
		return reInfo{need: best}
	}
	return reInfo{}
}

func bestOf(in reInfo) []string {
	if in.exact != nil && allNonEmpty(in.exact) {
		return in.exact
	}
	return in.need
}

// classSet lists a small character class's runes, lower-cased.
func classSet(ranges []rune) []string {
	var out []string
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i+1]-ranges[i] >= 2*maxClass {
			return nil
		}
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			out = append(out, string(unicode.ToLower(r)))
		}
	}
	out = dedup(out)
	if len(out) > maxClass {
		return nil
	}
	return out
}

func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return dedup(out)
}

func dedup(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func allNonEmpty(s []string) bool {
	for _, x := range s {
		if x == "" {
			return false
		}
	}
	return len(s) > 0
}

// usefulNeeds: every literal long enough (or a rare byte) to make a
// selective need.
func usefulNeeds(s []string) bool {
	if len(s) == 0 {
		return false
	}
	for _, x := range s {
		if len(x) < minNeedLen && !rareByte(x) {
			return false
		}
	}
	return true
}

// betterLits compares need sets as better does: longer shortest literal,
// then fewer literals.
func betterLits(a, b []string) bool {
	ma, mb := 1<<30, 1<<30
	for _, x := range a {
		ma = min(ma, min(len(x), 12))
	}
	for _, x := range b {
		mb = min(mb, min(len(x), 12))
	}
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}
