package query

import (
	"errors"
	"testing"
)

func TestValidateLogsQL(t *testing.T) {
	allowed := []string{
		`error`,
		`_time:1h error | stats by (host.name) count()`,
		`user.name:="root" AND source.ip:ipv4_range("10.0.0.0/8")`,
		`* | fields _time, host.name | sort by (_time desc) | limit 10`,
		`user.name:in("root", "admin")`,
		`user.name:in(*)`,
		`_stream:{job="x"} | top 5 by (user.name)`,
		`"options" | filter x:y`,
		`"join" | stats count() as n | filter n:>0`,
		`x | uniq by (host.name) | field_names`,
		`x | extract "from <ip> port" | facets`,
		"# a comment with | join and options(\nerror",
		`"a | union (b)"`,
		`x | format "<a>|<b>" as c`,
		`x | math (a + b) as c`,
		`_stream_id:in(0000007b000001c850d9950ea6196b1a4812081265faa1c7)`,
	}
	for _, q := range allowed {
		if err := ValidateLogsQL(q); err != nil {
			t.Errorf("ValidateLogsQL(%q) = %v; want nil", q, err)
		}
	}

	denied := []struct {
		q   string
		pos int
		msg string
	}{
		{``, 0, "empty query"},
		{`   `, 0, "empty query"},
		{`options(ignore_global_time_filter=true) error`, 0, "query options are not allowed in expert mode"},
		{`OPTIONS(time_offset=1y) error`, 0, "query options are not allowed in expert mode"},
		{`options (concurrency=1) error`, 0, "query options are not allowed in expert mode"},
		{`error | union (options(ignore_global_time_filter=true) *)`, 8, "the union pipe is not allowed in expert mode"},
		{`error | UNION (*)`, 8, "the union pipe is not allowed in expert mode"},
		{`error | join by (user.name) (* | fields user.name)`, 8, "the join pipe is not allowed in expert mode"},
		{`error | stream_context before 10`, 8, "the stream_context pipe is not allowed in expert mode"},
		{`error | block_stats`, 8, "the block_stats pipe is not allowed in expert mode"},
		{`error | blocks_count`, 8, "the blocks_count pipe is not allowed in expert mode"},
		{`error | query_stats`, 8, "the query_stats pipe is not allowed in expert mode"},
		{`user.name:in(error | fields user.name)`, 19, "subqueries are not allowed in expert mode"},
		{`x:contains_any(* | uniq by (x))`, 17, "subqueries are not allowed in expert mode"},
		{`_stream_id:in(* | fields _stream_id)`, 16, "subqueries are not allowed in expert mode"},
		{`x | filter y:in(z | fields y)`, 18, "subqueries are not allowed in expert mode"},
		{"error |\n# comment\n union (*)", 19, "the union pipe is not allowed in expert mode"},
	}
	for _, tc := range denied {
		err := ValidateLogsQL(tc.q)
		var qe *Error
		if !errors.As(err, &qe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateLogsQL(%q) = %v; want *Error", tc.q, err)
			continue
		}
		if qe.Pos != tc.pos || qe.Msg != tc.msg {
			t.Errorf("ValidateLogsQL(%q) = %d %q; want %d %q", tc.q, qe.Pos, qe.Msg, tc.pos, tc.msg)
		}
	}

	// Syntax errors come back as *Error with LogsQL's message.
	err := ValidateLogsQL(`foo AND (bar`)
	var qe *Error
	if !errors.As(err, &qe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("syntax error: got %v", err)
	}
	t.Logf("syntax error reported as: %v", err)
}

func TestLexLogsQL(t *testing.T) {
	toks := lexLogsQL("a:=\"x | y\" | 'q\\'' `r` !~ =~ # c\n(b)")
	var got []string
	for _, tk := range toks {
		s := tk.tok
		if tk.quoted {
			s = "Q" + s
		}
		got = append(got, s)
	}
	want := []string{"a", ":", "=", "Qx | y", "|", "Qq'", "Qr", "!~", "=~", "(", "b", ")"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
