package framing

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/mamori-soc/mamori/internal/testutil"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// result is one Next outcome, normalized for comparison.
type result struct {
	frame   string
	kind    string // "" or a comma-separated list of error kinds
	counted bool
}

func kindOf(err error) string {
	if err == nil {
		return ""
	}
	var k []string
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrBadOctetCount, "bad-count"},
		{ErrFrameTooLarge, "too-large"},
		{ErrTruncated, "truncated"},
		{ErrUnrecoverable, "unrecoverable"},
	} {
		if errors.Is(err, e.err) {
			k = append(k, e.name)
		}
	}
	if len(k) == 0 {
		return "other:" + err.Error()
	}
	return strings.Join(k, ",")
}

// readAll calls Next until io.EOF, an unrecoverable error (returned twice to
// check stickiness) or another error. It fails if Next does not make progress.
func readAll(t testing.TB, src io.Reader, maxFrame, inputLen int) (res []result, final error) {
	t.Helper()
	r := NewReader(src, maxFrame)
	for calls := 0; ; calls++ {
		if calls > inputLen+2 {
			t.Fatalf("Next called %d times on %d bytes of input without ending", calls, inputLen)
		}
		f, err := r.Next()
		if err == io.EOF {
			if f != nil {
				t.Fatalf("io.EOF with a non-nil frame %q", f)
			}
			if _, err2 := r.Next(); err2 != io.EOF {
				t.Fatalf("io.EOF is not sticky: then %v", err2)
			}
			return res, io.EOF
		}
		k := kindOf(err)
		if strings.HasPrefix(k, "other:") {
			return res, err
		}
		res = append(res, result{string(f), k, r.OctetCounted()})
		if errors.Is(err, ErrUnrecoverable) {
			if _, err2 := r.Next(); err2 != err {
				t.Fatalf("unrecoverable error is not sticky: %v then %v", err, err2)
			}
			return res, err
		}
		if err == nil && len(f) == 0 {
			t.Fatalf("empty frame with nil error")
		}
	}
}

// chunkers return readers that deliver the same bytes in different chunks;
// Next must give the same results whatever the chunking.
var chunkers = []struct {
	name string
	wrap func([]byte) io.Reader
}{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one-byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data-err", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
}

func r(frame, kind string) result { return result{frame: frame, kind: kind} }

func equalFrames(t *testing.T, got, want []result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].frame != want[i].frame || got[i].kind != want[i].kind {
			t.Errorf("frame %d: got %q (%s), want %q (%s)", i, got[i].frame, got[i].kind, want[i].frame, want[i].kind)
		}
	}
}

func TestNextTable(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxFrame int
		want     []result
		fatal    bool // ends on an unrecoverable error rather than io.EOF
	}{
		{name: "empty", in: ""},
		{name: "only delimiters", in: "\n\x00\n\n"},
		{name: "lf", in: "<1>a\n<2>b\n", want: []result{r("<1>a", ""), r("<2>b", "")}},
		{name: "crlf trimmed", in: "<1>a\r\n<2>b\r\n", want: []result{r("<1>a", ""), r("<2>b", "")}},
		{name: "blank lines skipped", in: "\n\n\r\n<1>a\n\n", want: []result{r("<1>a", "")}},
		{name: "nul delimiter", in: "<1>a\x00<2>b\x00", want: []result{r("<1>a", ""), r("<2>b", "")}},
		{name: "nul before lf", in: "<1>a\x00b\n", want: []result{r("<1>a", ""), r("b", "")}},
		{name: "lone cr kept inside", in: "a\rb\n", want: []result{r("a\rb", "")}},
		{name: "octet count excludes lf", in: "3 abc3 def", want: []result{r("abc", ""), r("def", "")}},
		{name: "octet count includes lf", in: "4 abc\n4 def\n", want: []result{r("abc", ""), r("def", "")}},
		{name: "stray lf after count", in: "3 abc\n3 def\n", want: []result{r("abc", ""), r("def", "")}},
		{name: "octet crlf counted", in: "5 abc\r\n", want: []result{r("abc", "")}},
		{name: "octet lf inside kept", in: "6 a\nb\nc\n", want: []result{r("a\nb\nc", "")}},
		{name: "octet nul inside kept", in: "3 a\x00b", want: []result{r("a\x00b", "")}},
		{name: "octet count is exact", in: "2 ab\n\n2 cd", want: []result{r("ab", ""), r("cd", "")}},
		{name: "bom kept", in: "6 \xef\xbb\xbfabc", want: []result{r("\xef\xbb\xbfabc", "")}},
		{name: "mixed framing", in: "<1>x\n5 <2>y\n<3>z\r\n3 <4>\n", want: []result{
			r("<1>x", ""), r("<2>y", ""), r("<3>z", ""), r("<4>", "")}},
		{name: "digits then text is a line", in: "2024-01-01 msg\n", want: []result{r("2024-01-01 msg", "")}},
		{name: "digits then lf is a line", in: "123\nabc\n", want: []result{r("123", ""), r("abc", "")}},
		{name: "eleven digits is a line", in: "12345678901 x\n", want: []result{r("12345678901 x", "")}},
		{name: "ten digits is a count", in: "0000000001 x\n", want: []result{r("0000000001 x", "bad-count")}},
		{name: "leading space is a line", in: " 3 abc\n", want: []result{r(" 3 abc", "")}},
		{name: "counted empty frame skipped", in: "1 \n2 ab", want: []result{r("ab", "")}},
		{name: "zero count", in: "0 abc\n<1>x\n", want: []result{r("0 abc", "bad-count"), r("<1>x", "")}},
		{name: "leading zero count", in: "03 abc\nx\n", want: []result{r("03 abc", "bad-count"), r("x", "")}},
		{name: "bad count then truncated", in: "0 abc", want: []result{r("0 abc", "bad-count,truncated")}},
		{name: "bad count then oversized", in: "0 abcdefgh\nx\n", maxFrame: 5,
			want: []result{r("0 abc", "bad-count,too-large"), r("x", "")}},
		{name: "count equal to max", in: "10 0123456789", maxFrame: 10, want: []result{r("0123456789", "")}},
		{name: "count above max", in: "<1>a\n11 01234567890\n<2>b\n", maxFrame: 10,
			want: []result{r("<1>a", ""), r("", "too-large,unrecoverable")}, fatal: true},
		{name: "huge count", in: "9999999999 x", maxFrame: 10,
			want: []result{r("", "too-large,unrecoverable")}, fatal: true},
		{name: "line equal to max", in: "abcde\nf\n", maxFrame: 5, want: []result{r("abcde", ""), r("f", "")}},
		{name: "oversized line", in: "abcdefgh\nxy\n", maxFrame: 5, want: []result{r("abcde", "too-large"), r("xy", "")}},
		{name: "oversized line cr counts", in: "abcde\r\nxy\n", maxFrame: 5, want: []result{r("abcde", "too-large"), r("xy", "")}},
		{name: "oversized line skip stops at nul", in: "abcdefgh\x00xy\n", maxFrame: 5, want: []result{r("abcde", "too-large"), r("xy", "")}},
		{name: "oversized line at eof", in: "abcdefgh", maxFrame: 5, want: []result{r("abcde", "too-large")}},
		{name: "oversized lines in a row", in: "aaaaaaa\nbbbbbbb\nc\n", maxFrame: 3,
			want: []result{r("aaa", "too-large"), r("bbb", "too-large"), r("c", "")}},
		{name: "truncated in digits", in: "<1>a\n12", want: []result{r("<1>a", ""), r("12", "truncated")}},
		{name: "truncated after sp", in: "5 ", want: []result{r("", "truncated")}},
		{name: "truncated counted", in: "5 ab", want: []result{r("ab", "truncated")}},
		{name: "truncated counted untrimmed", in: "5 ab\n", want: []result{r("ab\n", "truncated")}},
		{name: "truncated line", in: "<1>a\n<2>no lf", want: []result{r("<1>a", ""), r("<2>no lf", "truncated")}},
		{name: "truncated line cr trimmed", in: "<2>b\r", want: []result{r("<2>b", "truncated")}},
		{name: "binary garbage", in: "\xff\xfe\x00\x01\x02\n\x80", want: []result{
			r("\xff\xfe", ""), r("\x01\x02", ""), r("\x80", "truncated")}},
	}
	for _, tt := range tests {
		for _, c := range chunkers {
			t.Run(tt.name+"/"+c.name, func(t *testing.T) {
				got, final := readAll(t, c.wrap([]byte(tt.in)), tt.maxFrame, len(tt.in))
				equalFrames(t, got, tt.want)
				if tt.fatal != (final != io.EOF) {
					t.Errorf("final error %v, want fatal=%v", final, tt.fatal)
				}
			})
		}
	}
}

func TestOctetCountedFlag(t *testing.T) {
	got, _ := readAll(t, strings.NewReader("<1>a\n3 abc0 x\n"), 0, 16)
	want := []bool{false, true, false}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].counted != want[i] {
			t.Errorf("frame %d %q: OctetCounted %v, want %v", i, got[i].frame, got[i].counted, want[i])
		}
	}
}

// errAfter returns its data, then err.
type errAfter struct {
	data []byte
	err  error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReadErrors(t *testing.T) {
	boom := errors.New("connection reset")

	t.Run("mid frame", func(t *testing.T) {
		rd := NewReader(&errAfter{[]byte("3 abc5 ab"), boom}, 0)
		if f, err := rd.Next(); err != nil || string(f) != "abc" {
			t.Fatalf("Next = %q, %v", f, err)
		}
		f, err := rd.Next()
		if string(f) != "ab" || !errors.Is(err, ErrTruncated) || !errors.Is(err, boom) {
			t.Fatalf("Next = %q, %v; want partial frame with ErrTruncated wrapping the read error", f, err)
		}
		if _, err := rd.Next(); err != boom {
			t.Fatalf("then Next error %v, want the read error", err)
		}
	})
	t.Run("between frames", func(t *testing.T) {
		rd := NewReader(&errAfter{[]byte("<1>a\n"), boom}, 0)
		if f, err := rd.Next(); err != nil || string(f) != "<1>a" {
			t.Fatalf("Next = %q, %v", f, err)
		}
		for range 2 {
			if f, err := rd.Next(); f != nil || err != boom {
				t.Fatalf("Next = %q, %v; want nil, the read error (sticky)", f, err)
			}
		}
	})
	t.Run("no progress", func(t *testing.T) {
		rd := NewReader(&errAfter{nil, nil}, 0)
		if _, err := rd.Next(); err != io.ErrNoProgress {
			t.Fatalf("Next error %v, want io.ErrNoProgress", err)
		}
	})
}

// TestFramesAcrossBufferBoundaries streams many frames of random sizes close
// to the maximum, in random chunks, so that frames straddle compactions.
func TestFramesAcrossBufferBoundaries(t *testing.T) {
	const maxFrame = 70 << 10 // larger than the minimum buffer
	rng := rand.New(rand.NewPCG(1, 2))
	var in bytes.Buffer
	var want []result
	for i := 0; i < 300; i++ {
		n := 1 + rng.IntN(maxFrame-1)
		if i%7 == 0 {
			n = maxFrame - 1
		}
		body := make([]byte, n)
		for j := range body {
			body[j] = 'a' + byte(rng.IntN(26))
		}
		copy(body, fmt.Sprintf("<%d>", i))
		if i%2 == 0 {
			fmt.Fprintf(&in, "%d %s\n", n+1, body) // rsyslog style: LF counted
		} else {
			fmt.Fprintf(&in, "%s\n", body)
		}
		want = append(want, r(string(body), ""))
	}
	src := &randChunks{data: in.Bytes(), rng: rng}
	got, final := readAll(t, src, maxFrame, in.Len())
	if final != io.EOF {
		t.Fatalf("final error %v", final)
	}
	equalFrames(t, got, want)
}

type randChunks struct {
	data []byte
	rng  *rand.Rand
}

func (c *randChunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rng.IntN(min(len(p), 100000))
	n = copy(p[:min(n, len(p))], c.data)
	c.data = c.data[n:]
	return n, nil
}

// corpusDir returns the directory of real wire captures shared by the project,
// reached from the package directory. It skips the test when the corpus is
// absent, unless MAMORI_REQUIRE_ALL=1.
func corpusDir(t testing.TB) string {
	t.Helper()
	return testutil.Corpus(t, filepath.Join("syslog-wire", "captures"))
}

func loggenFrames() []result {
	var want []result
	pad := strings.Repeat("PADD", 20)
	for i := 0; i < 10; i++ {
		s := fmt.Sprintf("<38>1 2026-11-25T17:52:46+00:00 localhost prg00000 1234 - - \xef\xbb\xbf"+
			"seq: %010d, thread: 0000, runid: 1795629166, stamp: 2026-11-25T17:52:46 ", i)
		s += pad
		s = s[:199] // loggen pads the frame to 200 bytes, LF included in the count
		want = append(want, result{s, "", true})
	}
	return want
}

// corpusCases lists the TCP/TLS captures with the exact frames they hold.
type corpusCase struct {
	file    string
	counted bool
	want    []string
	wantFn  func() []result
}

var corpusCases = []corpusCase{
	{file: "logger_tcp_octet.bin", counted: true, want: []string{ // count excludes LF, no LF sent
		`<13>1 2026-11-25T17:50:48.725154+00:00 vm soc-test - - [timeQuality tzKnown="1" isSynced="0"] first message`,
		`<13>1 2026-11-25T17:50:48.725240+00:00 vm soc-test - - [timeQuality tzKnown="1" isSynced="0"] second message with  spaces`,
	}},
	{file: "rs_tcp_octet.bin", counted: true, want: []string{ // count includes LF
		`<22>1 2026-11-25T17:51:42+00:00 vm postfix - - -  NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied`,
		`<25>1 2026-11-25T17:51:42.635452+00:00 vm clamd - - [timeQuality tzKnown="1" isSynced="0"] /var/spool/x/eicar.com: Eicar-Test-Signature FOUND`,
	}},
	{file: "rs_tls_gtls.bin", counted: true, want: []string{
		`<22>1 2026-11-25T17:51:42+00:00 vm postfix - - -  NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied`,
		`<25>1 2026-11-25T17:51:42.635452+00:00 vm clamd - - [timeQuality tzKnown="1" isSynced="0"] /var/spool/x/eicar.com: Eicar-Test-Signature FOUND`,
	}},
	{file: "rs_tls_ossl.bin", counted: false, want: []string{
		`<22>2026-11-25T17:51:42+00:00 vm postfix/smtpd: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied`,
		`<25>2026-11-25T17:51:42.635452+00:00 vm clamd /var/spool/x/eicar.com: Eicar-Test-Signature FOUND`,
	}},
	{file: "sng_5424_tcp.bin", counted: true, want: []string{
		`<38>1 2026-11-25T17:52:33+00:00 vm sshd - - - Failed password for root from 192.0.2.7 port 4242 ssh2`,
	}},
	{file: "sng_5424_tls.bin", counted: true, want: []string{
		`<38>1 2026-11-25T17:52:33+00:00 vm sshd - - - Failed password for root from 192.0.2.7 port 4242 ssh2`,
	}},
	{file: "sng_bsd_tcp.bin", counted: false, want: []string{
		`<38>Nov 25 17:52:33 vm sshd: Failed password for root from 192.0.2.7 port 4242 ssh2`,
	}},
	{file: "logger_tcp_lf.bin", counted: false, want: []string{
		`<13>1 2026-11-25T17:50:47.714913+00:00 vm soc-test - - [timeQuality tzKnown="1" isSynced="0"] tcp line one`,
	}},
	{file: "openssl_s_client_octet.bin", counted: true, want: []string{
		`<14>1 2024-01-01T00:00:00Z host app - - - hello over tls`,
	}},
	{file: "socat_tls_octet.bin", counted: true, want: []string{
		`<14>1 2024-01-01T00:00:00Z host app - - - hello over tls`,
	}},
	{file: "loggen_tcp5424_first10.bin", counted: true, wantFn: loggenFrames},
}

func (c *corpusCase) results() []result {
	if c.wantFn != nil {
		return c.wantFn()
	}
	var out []result
	for _, s := range c.want {
		out = append(out, result{s, "", c.counted})
	}
	return out
}

func TestCorpusCaptures(t *testing.T) {
	dir := corpusDir(t)
	var all []byte
	var allWant []result
	for i := range corpusCases {
		c := &corpusCases[i]
		data, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			testutil.Missing(t, "capture missing: %v", err)
		}
		want := c.results()
		all = append(all, data...)
		allWant = append(allWant, want...)
		for _, ch := range chunkers {
			t.Run(c.file+"/"+ch.name, func(t *testing.T) {
				got, final := readAll(t, ch.wrap(data), 0, len(data))
				if final != io.EOF {
					t.Fatalf("final error %v, want io.EOF", final)
				}
				equalFrames(t, got, want)
				for i := range got {
					if got[i].counted != want[i].counted {
						t.Errorf("frame %d: OctetCounted %v, want %v", i, got[i].counted, want[i].counted)
					}
				}
			})
		}
	}
	// All captures back to back on one connection: framing switches per frame.
	for _, ch := range chunkers {
		t.Run("all-concatenated/"+ch.name, func(t *testing.T) {
			got, final := readAll(t, ch.wrap(all), 0, len(all))
			if final != io.EOF {
				t.Fatalf("final error %v, want io.EOF", final)
			}
			equalFrames(t, got, allWant)
			t.Logf("%d captures, %d bytes, %d frames", len(corpusCases), len(all), len(got))
		})
	}
}

// TestCorpusUDPDatagram checks a datagram capture read as a stream: its one
// message has no LF, so it comes back whole but flagged truncated.
func TestCorpusUDPDatagram(t *testing.T) {
	dir := corpusDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "logger_udp5424.bin"))
	if err != nil {
		t.Skipf("capture missing: %v", err)
	}
	got, _ := readAll(t, bytes.NewReader(data), 0, len(data))
	equalFrames(t, got, []result{r(string(data), "truncated")})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("3 abc<1>x\n0 y\n12"), uint16(0))
	f.Add([]byte("aaaaaaaa\nbb\n"), uint16(3))
	f.Add([]byte("9999999999 x\n03 ab\n\x00\r\n5 ab"), uint16(10))
	f.Add([]byte("12345678901 x\n4 abc\n\n1 \n"), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		maxFrame := int(max)
		if maxFrame == 0 {
			maxFrame = DefaultMaxFrame
		}
		got, final := readAll(t, bytes.NewReader(data), maxFrame, len(data))
		if final != io.EOF && !errors.Is(final, ErrUnrecoverable) {
			t.Fatalf("unexpected final error %v", final)
		}
		total := 0
		for _, g := range got {
			if len(g.frame) > maxFrame && len(g.frame) > maxCountDigits {
				t.Fatalf("frame of %d bytes exceeds maxFrame %d", len(g.frame), maxFrame)
			}
			total += len(g.frame)
		}
		if total > len(data) {
			t.Fatalf("returned %d bytes from %d bytes of input", total, len(data))
		}
		// Chunking must not change the result.
		got1, final1 := readAll(t, iotest.OneByteReader(bytes.NewReader(data)), maxFrame, len(data))
		equalFrames(t, got1, got)
		if (final1 == io.EOF) != (final == io.EOF) {
			t.Fatalf("final error %v with one-byte reads, %v with whole reads", final1, final)
		}
	})
}

// loopReader serves data endlessly.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func benchFrames(b *testing.B, frame []byte) {
	block := bytes.Repeat(frame, 4096)
	rd := NewReader(&loopReader{data: block}, 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := rd.Next()
		if err != nil || len(f) == 0 {
			b.Fatalf("Next = %q, %v", f, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkOctetCounted200 reads 200-byte octet-counted frames (count includes LF).
func BenchmarkOctetCounted200(b *testing.B) {
	msg := "<38>1 2026-11-25T17:52:46+00:00 localhost prg00000 1234 - - seq: 0000000000 " + strings.Repeat("PADD", 50)
	msg = msg[:199] + "\n"
	benchFrames(b, []byte("200 "+msg))
}

// BenchmarkLF200 reads 200-byte LF-delimited frames.
func BenchmarkLF200(b *testing.B) {
	msg := "<38>Nov 25 17:52:33 vm sshd: seq 0000000000 " + strings.Repeat("PADD", 50)
	benchFrames(b, []byte(msg[:199]+"\n"))
}
