package correlate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specFailedLogins is the specification's complete example (multi-document).
const specFailedLogins = `title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
description: Detects multiple failed logins by a single user followed by a successful login of that user
author: Florian Roth (Nextron Systems)
date: 2023-06-16
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
falsepositives:
    - Unlikely
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
description: Detects multiple failed logins within a certain amount of time
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
`

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want Rule
	}{
		{"value_count from the specification", `title: Failed login
id: 0e95725d-7320-415d-80f7-004da920fc12
correlation:
    type: value_count
    rules:
        - 5638f7c0-ac70-491d-8465-2a65075e0d86
    group-by:
        - ComputerName
        - WorkstationName
    timespan: 1d
    condition:
        field: User
        gte: 100
`, Rule{ID: "0e95725d-7320-415d-80f7-004da920fc12", Title: "Failed login", Path: "p.yml", Type: ValueCount,
			Rules: []string{"5638f7c0-ac70-491d-8465-2a65075e0d86"}, GroupBy: []string{"ComputerName", "WorkstationName"},
			Timespan: 24 * time.Hour, Condition: Condition{Field: "User", Predicates: []Predicate{{GTE, 100}}}}},
		{"metadata, range, generate, taxonomy ignored", `title: Many
id: x1
name: many
description: d
status: test
level: critical
tags: [attack.t1110, attack.credential-access]
taxonomy: ecs
author: me
generate: true
correlation:
    type: event_count
    rules: base
    group-by: dns.question.name
    timespan: 90m
    condition:
        gt: 100
        lte: 200
`, Rule{ID: "x1", Name: "many", Title: "Many", Description: "d", Status: "test", Level: "critical", Path: "p.yml",
			Tags: []string{"attack.t1110", "attack.credential-access"}, Type: EventCount, Rules: []string{"base"},
			GroupBy: []string{"dns.question.name"}, Timespan: 90 * time.Minute, Generate: true,
			Condition: Condition{Predicates: []Predicate{{GT, 100}, {LTE, 200}}}}},
		{"temporal without condition", `title: Recon
correlation:
    type: temporal
    rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]
    group-by: [ComputerName, User]
    timespan: 5m
`, Rule{Title: "Recon", Path: "p.yml", Type: Temporal, Rules: []string{"recon_cmd_a", "recon_cmd_b", "recon_cmd_c"},
			GroupBy: []string{"ComputerName", "User"}, Timespan: 5 * time.Minute}},
		{"aliases", `title: A
correlation:
    type: temporal
    rules: [r1, r2]
    group-by: [ip]
    timespan: 10s
    aliases:
        ip:
            r1: destination.ip
            r2: source.ip
`, Rule{Title: "A", Path: "p.yml", Type: Temporal, Rules: []string{"r1", "r2"}, GroupBy: []string{"ip"},
			Timespan: 10 * time.Second, Aliases: map[string]map[string]string{"ip": {"r1": "destination.ip", "r2": "source.ip"}}}},
		{"value_avg with a fractional threshold", `title: Avg
correlation:
    type: value_avg
    rules: [rule_a_id]
    group-by: [SourceIP, User]
    timespan: 24h
    condition:
        field: BytesOut
        gt: 500.5
`, Rule{Title: "Avg", Path: "p.yml", Type: ValueAvg, Rules: []string{"rule_a_id"}, GroupBy: []string{"SourceIP", "User"},
			Timespan: 24 * time.Hour, Condition: Condition{Field: "BytesOut", Predicates: []Predicate{{GT, 500.5}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("p.yml", []byte(tc.yml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseTemporalExpression(t *testing.T) {
	r := mustParse(t, `title: Recon
correlation:
    type: temporal
    rules: [recon_cmd_a, recon_cmd_b, recon_cmd_c]
    group-by: [ComputerName, User]
    timespan: 5m
    condition: recon_cmd_a AND (recon_cmd_b or NOT recon_cmd_c)
`)
	if r.Condition.Expr == "" || !r.Condition.Bounded() {
		t.Fatalf("expression with NOT must be bounded: %+v", r.Condition)
	}
	for _, tc := range []struct {
		present []bool
		want    bool
	}{
		{[]bool{true, true, true}, true},
		{[]bool{true, false, false}, true},
		{[]bool{true, false, true}, false},
		{[]bool{false, true, false}, false},
	} {
		if got := r.Condition.expr.eval(tc.present); got != tc.want {
			t.Errorf("eval(%v) = %v, want %v", tc.present, got, tc.want)
		}
	}
}

func TestParseAllSpecExample(t *testing.T) {
	rules, errs := ParseAll("mr_failed.yml", []byte(specFailedLogins))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(rules) != 2 || rules[0].Type != TemporalOrdered || rules[1].Name != "multiple_failed_login" {
		t.Fatalf("got %d rules: %+v", len(rules), rules)
	}
	e, errs := New(rules, Options{KnownRule: func(s string) bool { return s == "failed_login" || s == "successful_login" }})
	if len(errs) != 0 || len(e.Rules()) != 2 {
		t.Fatalf("New: %v", errs)
	}
	// Parse takes exactly one document.
	if _, err := Parse("mr_failed.yml", []byte(specFailedLogins)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse of a multi-document file: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "title: T\ncorrelation:\n"
	tests := []struct {
		name     string
		yml      string
		sentinel error
		want     string // the whole message
	}{
		{"empty", "", ErrNotCorrelation, "p.yml: not a correlation rule: empty document"},
		{"syntax", "title: [unclosed\n", ErrSyntax, "p.yml: invalid YAML: yaml: line 1: did not find expected ',' or ']'"},
		{"not a mapping", "- a\n- b\n", ErrNotCorrelation, "p.yml:1: not a correlation rule: document is not a mapping"},
		{"detection document", "title: T\nlogsource: {product: x}\n", ErrInvalid, "p.yml:2: logsource: invalid value: a correlation rule has no logsource (put the detection in its own YAML document)"},
		{"no correlation", "title: T\nlevel: high\n", ErrNotCorrelation, "p.yml:1: correlation: not a correlation rule: no correlation attribute"},
		{"no title", "correlation:\n    type: temporal\n    rules: [a]\n    timespan: 1m\n", ErrMissing, "p.yml:1: title: required field missing: a correlation rule needs a title"},
		{"bad level", "title: T\nlevel: severe\ncorrelation: {}\n", ErrInvalid, `p.yml:2: level: invalid value: "severe" is not one of critical, high, informational, low, medium`},
		{"bad status", "title: T\nstatus: beta\ncorrelation: {}\n", ErrInvalid, `p.yml:2: status: invalid value: "beta" is not one of deprecated, experimental, stable, test, unsupported`},
		{"duplicate key", "title: T\ntitle: U\ncorrelation: {}\n", ErrInvalid, "p.yml:2: title: invalid value: attribute given twice"},
		{"generate not bool", "title: T\ngenerate: yes please\ncorrelation: {}\n", ErrInvalid, "p.yml:2: generate: invalid value: must be true or false"},
		{"tags not strings", "title: T\ntags: [[a]]\ncorrelation: {}\n", ErrInvalid, "p.yml:2: tags[0]: invalid value: must be a string"},
		{"correlation not a map", head[:len(head)-1] + " [a]\n", ErrInvalid, "p.yml:2: correlation: invalid value: must be a mapping"},
		{"no type", head + "    rules: [a]\n", ErrMissing, "p.yml:3: correlation.type: required field missing: expected one of event_count, value_count, temporal, temporal_ordered, value_sum, value_avg"},
		{"unknown type", head + "    type: event_counts\n", ErrInvalid, `p.yml:3: correlation.type: invalid value: "event_counts": expected one of event_count, value_count, temporal, temporal_ordered, value_sum, value_avg`},
		{"unsupported type", head + "    type: value_percentile\n", ErrUnsupported, "p.yml:3: correlation.type: not supported: value_percentile correlations are not evaluated by Mamori"},
		{"typo in correlation", head + "    type: event_count\n    groupby: [x]\n", ErrInvalid, "p.yml:4: correlation.groupby: invalid value: unknown attribute (expected type, rules, group-by, timespan, condition, aliases, generate)"},
		{"no rules", head + "    type: temporal\n    timespan: 1m\n", ErrMissing, "p.yml:3: correlation.rules: required field missing: at least one referenced rule is needed"},
		{"empty rules", head + "    type: temporal\n    rules: []\n    timespan: 1m\n", ErrMissing, "p.yml:4: correlation.rules: required field missing: at least one referenced rule is needed"},
		{"duplicate rule", head + "    type: temporal\n    rules: [a, b, a]\n    timespan: 1m\n", ErrInvalid, `p.yml:4: correlation.rules[2]: invalid value: "a" listed twice`},
		{"rules not strings", head + "    type: temporal\n    rules: [{a: 1}]\n", ErrInvalid, "p.yml:4: correlation.rules[0]: invalid value: must be a string"},
		{"duplicate group-by", head + "    type: temporal\n    rules: [a]\n    group-by: [u, u]\n    timespan: 1m\n", ErrInvalid, `p.yml:5: correlation.group-by[1]: invalid value: "u" listed twice`},
		{"no timespan", head + "    type: temporal\n    rules: [a]\n", ErrMissing, "p.yml:3: correlation.timespan: required field missing: e.g. 5m"},
		{"timespan unit", head + "    type: temporal\n    rules: [a]\n    timespan: 5M\n", ErrInvalid, `p.yml:5: correlation.timespan: invalid value: "5M": unit must be one of s, m, h, d, w`},
		{"timespan zero", head + "    type: temporal\n    rules: [a]\n    timespan: 0s\n", ErrInvalid, `p.yml:5: correlation.timespan: invalid value: "0s": must be positive`},
		{"timespan fraction", head + "    type: temporal\n    rules: [a]\n    timespan: 1.5h\n", ErrInvalid, `p.yml:5: correlation.timespan: invalid value: "1.5h": expected a whole number before the unit`},
		{"timespan overflow", head + "    type: temporal\n    rules: [a]\n    timespan: 99999999999999d\n", ErrInvalid, `p.yml:5: correlation.timespan: invalid value: "99999999999999d": out of range`},
		{"no condition", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n", ErrMissing, "p.yml:3: correlation.condition: required field missing: event_count needs a condition such as gte: 10"},
		{"condition operator", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {ge: 3}\n", ErrInvalid, "p.yml:6: correlation.condition.ge: invalid value: unknown operator (expected gt, gte, lt, lte, eq, field)"},
		{"condition not a number", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {gte: ten}\n", ErrInvalid, "p.yml:6: correlation.condition.gte: invalid value: must be a number"},
		{"fractional count", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {gte: 2.5}\n", ErrInvalid, "p.yml:6: correlation.condition.gte: invalid value: a count must be a whole number ≥ 0, not 2.5"},
		{"negative count", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {gte: -1}\n", ErrInvalid, "p.yml:6: correlation.condition.gte: invalid value: a count must be a whole number ≥ 0, not -1"},
		{"empty condition", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {}\n", ErrMissing, "p.yml:6: correlation.condition: required field missing: no comparison (gt, gte, lt, lte, eq)"},
		{"impossible range", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {gt: 10, lt: 5}\n", ErrInvalid, "p.yml:6: correlation.condition: invalid value: the comparisons can never all hold"},
		{"field on event_count", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: {field: x, gte: 1}\n", ErrInvalid, "p.yml:6: correlation.condition.field: invalid value: only value_count, value_sum and value_avg take a field"},
		{"value_count without field", head + "    type: value_count\n    rules: [a]\n    timespan: 1m\n    condition: {gte: 1}\n", ErrMissing, "p.yml:6: correlation.condition.field: required field missing: value_count counts or sums the values of a field"},
		{"condition as a string on event_count", head + "    type: event_count\n    rules: [a]\n    timespan: 1m\n    condition: a\n", ErrInvalid, "p.yml:6: correlation.condition: invalid value: must be a mapping such as {gte: 10}"},
		{"expression names unknown rule", head + "    type: temporal\n    rules: [a, b]\n    timespan: 1m\n    condition: a and c\n", ErrInvalid, `p.yml:6: correlation.condition: invalid value: "c" is not one of the correlation's rules`},
		{"expression syntax", head + "    type: temporal\n    rules: [a, b]\n    timespan: 1m\n    condition: a and (b\n", ErrInvalid, "p.yml:6: correlation.condition: invalid value: missing )"},
		{"expression dangling and", head + "    type: temporal\n    rules: [a, b]\n    timespan: 1m\n    condition: a and\n", ErrInvalid, "p.yml:6: correlation.condition: invalid value: expression ends early"},
		{"ordered with a partial expression", head + "    type: temporal_ordered\n    rules: [a, b]\n    timespan: 1m\n    condition: a or b\n", ErrUnsupported, "p.yml:6: correlation.condition: not supported: temporal_ordered only takes the conjunction of all its rules"},
		{"ordered with a count", head + "    type: temporal_ordered\n    rules: [a, b]\n    timespan: 1m\n    condition: {gte: 1}\n", ErrUnsupported, "p.yml:6: correlation.condition: not supported: temporal_ordered requires all its rules in order; a count condition is not supported"},
		{"aliases not a map", head + "    type: temporal\n    rules: [a]\n    timespan: 1m\n    aliases: [x]\n", ErrInvalid, "p.yml:6: correlation.aliases: invalid value: must map alias → rule name → field"},
		{"alias target not a map", head + "    type: temporal\n    rules: [a]\n    timespan: 1m\n    aliases: {ip: source.ip}\n", ErrInvalid, "p.yml:6: correlation.aliases.ip: invalid value: must map rule name → field name"},
		{"alias field empty", head + "    type: temporal\n    rules: [a]\n    timespan: 1m\n    aliases: {ip: {a: ''}}\n", ErrInvalid, "p.yml:6: correlation.aliases.ip.a: invalid value: empty field name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse("p.yml", []byte(tc.yml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", r)
			}
			if r != nil {
				t.Error("a rule returned with an error")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tc.sentinel)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Path != "p.yml" {
				t.Errorf("error %T is not a *ParseError naming the file", err)
			}
			if err.Error() != tc.want {
				t.Errorf("message\n got %q\nwant %q", err.Error(), tc.want)
			}
		})
	}
}

func TestParseAllReportsLinesInTheFile(t *testing.T) {
	body := "title: base\ndetection: {sel: {a: 1}, condition: sel}\n---\ntitle: C\ncorrelation:\n    type: temporal\n    rules: [a]\n    timespan: 5x\n"
	rules, errs := ParseAll("f.yml", []byte(body))
	if len(rules) != 0 || len(errs) != 1 {
		t.Fatalf("rules %v errs %v", rules, errs)
	}
	if want := `f.yml:8: correlation.timespan: invalid value: "5x": unit must be one of s, m, h, d, w`; errs[0].Error() != want {
		t.Errorf("got %q want %q", errs[0], want)
	}
}

func TestParseTimespan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1s": time.Second, "90m": 90 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "366d": MaxTimespan,
	} {
		if got, err := ParseTimespan(in); err != nil || got != want {
			t.Errorf("ParseTimespan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "5", "-5m", "+5m", "5 m", "5ms", "1y", "0m", "367d", "53w"} {
		if _, err := ParseTimespan(in); err == nil {
			t.Errorf("ParseTimespan(%q) accepted", in)
		}
	}
}

func TestConditionHolds(t *testing.T) {
	c := Condition{Predicates: []Predicate{{GT, 100}, {LTE, 200}}}
	for x, want := range map[float64]bool{100: false, 101: true, 200: true, 201: false} {
		if c.Holds(x) != want {
			t.Errorf("Holds(%v) = %v", x, !want)
		}
	}
	if !c.Bounded() {
		t.Error("a range with lte is bounded")
	}
	if (&Condition{Predicates: []Predicate{{GTE, 3}}}).Bounded() {
		t.Error("gte alone is monotone")
	}
	if !strings.Contains(ErrCycle.Error(), "cycle") {
		t.Error("sentinel text")
	}
}
