package alert

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Exception operators.
const (
	OpEquals     = "equals"
	OpContains   = "contains"
	OpStartsWith = "startswith"
	OpEndsWith   = "endswith"
	OpCIDR       = "cidr"
)

// Exception suppresses the alerts of a tenant (or every tenant), of one
// rule (or every rule), whose event has Field matching one of Values
// (case-insensitive). An exception without a field suppresses the rule for
// the tenant altogether.
type Exception struct {
	ID      int64     `json:"id"`
	Tenant  string    `json:"tenant,omitempty"`
	RuleID  string    `json:"rule_id,omitempty"`
	Field   string    `json:"field,omitempty"`
	Op      string    `json:"op,omitempty"`
	Values  []string  `json:"values,omitempty"`
	Comment string    `json:"comment,omitempty"`
	Created time.Time `json:"created"`
	// Expires, when set, ends the exception.
	Expires time.Time `json:"expires,omitzero"`

	prefixes []netip.Prefix
}

// compile checks an exception and prepares its values.
func (x *Exception) compile() error {
	if x.Op == "" {
		x.Op = OpEquals
	}
	if x.RuleID == "" && x.Field == "" {
		return fmt.Errorf("%w: an exception needs a rule id, a field, or both", ErrBadRule)
	}
	if x.Field != "" && len(x.Values) == 0 {
		return fmt.Errorf("%w: field %q without values", ErrBadRule, x.Field)
	}
	if x.Field == "" && len(x.Values) > 0 {
		return fmt.Errorf("%w: values without a field", ErrBadRule)
	}
	switch x.Op {
	case OpEquals, OpContains, OpStartsWith, OpEndsWith:
		for i, v := range x.Values {
			x.Values[i] = strings.ToLower(v)
		}
	case OpCIDR:
		x.prefixes = x.prefixes[:0]
		for _, v := range x.Values {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return fmt.Errorf("%w: %q is not a CIDR", ErrBadRule, v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			x.prefixes = append(x.prefixes, p.Masked())
		}
	default:
		return fmt.Errorf("%w: unknown operator %q (equals, contains, startswith, endswith, cidr)", ErrBadRule, x.Op)
	}
	return nil
}

// matches reports whether x suppresses f at now.
func (x *Exception) matches(f *Finding, now time.Time) bool {
	if !x.Expires.IsZero() && !now.Before(x.Expires) {
		return false
	}
	if x.Tenant != "" && x.Tenant != f.Tenant {
		return false
	}
	if x.RuleID != "" && x.RuleID != f.Rule.ID {
		return false
	}
	if x.Field == "" {
		return true
	}
	v, ok := x.lookup(f)
	if !ok {
		return false
	}
	if x.Op == OpCIDR {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		return slices.ContainsFunc(x.prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	v = strings.ToLower(v)
	return slices.ContainsFunc(x.Values, func(want string) bool {
		switch x.Op {
		case OpContains:
			return strings.Contains(v, want)
		case OpStartsWith:
			return strings.HasPrefix(v, want)
		case OpEndsWith:
			return strings.HasSuffix(v, want)
		}
		return v == want
	})
}

// lookup finds the exception's field in the finding's event, or else in
// its entities (so exceptions also apply to findings without an event,
// e.g. "host=mail-01" on a baseline alert).
func (x *Exception) lookup(f *Finding) (string, bool) {
	if f.Field != nil {
		if v, ok := f.Field(x.Field); ok {
			return v, true
		}
	}
	if v, ok := f.Details[x.Field]; ok {
		return v, true
	}
	return "", false
}
