package pattern

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

func eicarSet(t testing.TB) *Set {
	sum := md5.Sum([]byte(eicar))
	return compileRecs(t,
		"hash E.Hash "+hex.EncodeToString(sum[:])+":68",
		"body E.Body 0:*:45494341522d5354414e44415244",
	)
}

type member struct {
	name string
	data []byte
}

func zipOf(t testing.TB, ms ...member) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		if i%2 == 1 {
			h.Method = zip.Store
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(m.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarOf(t testing.TB, ms ...member) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, m := range ms {
		w.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
		w.Write(m.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzOf(t testing.TB, name string, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Name = name
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstdOf(t testing.TB, data []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}

func scanWith(t testing.TB, set *Set, lim Limits, name string, data []byte) []string {
	t.Helper()
	sc := NewScanner(set, lim)
	sc.repanic = true
	dets, err := sc.ScanBytes(context.Background(), name, data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dets {
		out = append(out, d.Container+":"+d.Signature)
	}
	return out
}

func TestContainers(t *testing.T) {
	set := eicarSet(t)
	e := []byte(eicar)
	mail := "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n" +
		"--OUT\r\nContent-Type: multipart/alternative; boundary=\"IN\"\r\n\r\n" +
		"--IN\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--IN\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<p>EICAR-STANDARD-=\r\nANTIVIRUS</p>\r\n--IN--\r\n" +
		"--OUT\r\nContent-Type: application/zip; name=\"a.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap64(zipOf(t, member{"inner.com", e})) + "\r\n" +
		"--OUT\r\nContent-Type: message/rfc822\r\n\r\n" +
		"From: c@example.com\r\nSubject: fwd\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"C:\\\\dir\\\\fwd.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap64(e) + "\r\n--OUT--\r\n"
	mbox := "From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\nSubject: one\n\nno attachment\n\n" +
		"From b@example.com Mon Jan  1 00:00:00 2024\nFrom: b@example.com\nSubject: two\nContent-Transfer-Encoding: base64\n\n" +
		wrap64(e) + "\n"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"plain.com", e, ":E.Hash :E.Body"},
		{"a.zip", zipOf(t, member{"dir/", nil}, member{"x.txt", []byte("clean")}, member{"e!1.com", e}),
			"e%211.com:E.Hash e%211.com:E.Body"},
		{"stored.zip", zipOf(t, member{"x", []byte("clean")}, member{"stored.com", e}),
			"stored.com:E.Hash stored.com:E.Body :E.Body"},
		{"a.tar.gz", gzOf(t, "", tarOf(t, member{"x", []byte("clean")}, member{"sub/e.com", e})),
			"a.tar!sub/e.com:E.Hash a.tar!sub/e.com:E.Body a.tar:E.Body"},
		{"a.tgz", gzOf(t, "", tarOf(t, member{"e.com", e})), "a.tar!e.com:E.Hash a.tar!e.com:E.Body a.tar:E.Body"},
		{"b.gz", gzOf(t, "stored-name.com", e), "stored-name.com:E.Hash stored-name.com:E.Body"},
		{"z.zst", zstdOf(t, e), "z:E.Hash z:E.Body :E.Body"}, // tiny input: stored raw
		{"deep.zip", zipOf(t, member{"l1.tar", tarOf(t, member{"l2.zip", zipOf(t, member{"l3.com", e})})}),
			"l1.tar!l2.zip!l3.com:E.Hash l1.tar!l2.zip!l3.com:E.Body"},
		{"m.eml", []byte(mail),
			"part1.2:E.Body a.zip!inner.com:E.Hash a.zip!inner.com:E.Body part3!fwd.com:E.Hash part3!fwd.com:E.Body :E.Body"},
		{"m.mbox", []byte(mbox), "msg2.part1:E.Hash msg2.part1:E.Body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(scanWith(t, set, Limits{}, tc.name, tc.data), " ")
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func wrap64(b []byte) string {
	s := base64Std(b)
	var sb strings.Builder
	for len(s) > 60 {
		sb.WriteString(s[:60] + "\r\n")
		s = s[60:]
	}
	sb.WriteString(s)
	return sb.String()
}

func TestLimits(t *testing.T) {
	set := eicarSet(t)
	e := []byte(eicar)
	nested := e
	for i := 0; i < 7; i++ {
		nested = gzOf(t, fmt.Sprintf("l%d", 7-i), nested)
	}
	zeros := gzOf(t, "zeros", make([]byte, 8<<20))
	big := gzOf(t, "big", append(bytes.Repeat([]byte("0123456789abcdef"), 1<<17), e...))
	five := []member{{"1", e}, {"2", e}, {"3", e}, {"4", e}, {"5", e}}
	var enc bytes.Buffer
	{
		w := zip.NewWriter(&enc)
		f, _ := w.CreateHeader(&zip.FileHeader{Name: "secret.com", Method: zip.Store, Flags: 1})
		f.Write([]byte("ciphertext"))
		w.Close()
	}
	truncated := gzOf(t, "cut.com", e)
	truncated = truncated[:len(truncated)-6] // the CRC/size trailer is gone

	tests := []struct {
		name string
		lim  Limits
		data []byte
		want string
	}{
		{"depth", Limits{MaxDepth: 3}, nested, "l1!l2!l3:Mamori.Limit.MaxDepth"},
		{"depth ok", Limits{MaxDepth: 7}, nested, "l1!l2!l3!l4!l5!l6!l7:E.Hash l1!l2!l3!l4!l5!l6!l7:E.Body"},
		{"ratio", Limits{}, zeros, "zeros:Mamori.Limit.MaxRatio"},
		{"ratio relaxed", Limits{MaxRatio: 5000}, zeros, ""},
		{"total bytes", Limits{MaxTotalBytes: 1 << 20, MaxRatio: 1e6}, big, "big:Mamori.Limit.MaxTotalBytes"},
		{"total bytes ok", Limits{MaxTotalBytes: 4 << 20, MaxRatio: 1e6}, big, "big:E.Body"},
		{"zip files", Limits{MaxFiles: 2}, zipOf(t, five...), "1:E.Hash 1:E.Body 2:E.Hash 2:E.Body :Mamori.Limit.MaxFiles :E.Body"},
		{"objects", Limits{MaxObjects: 3}, zipOf(t, member{"a.zip", zipOf(t, five...)}),
			"a.zip!1:E.Hash a.zip!1:E.Body a.zip!2:E.Hash a.zip!2:E.Body a.zip!3:Mamori.Limit.MaxObjects a.zip:E.Body"},
		{"zip directory", Limits{MaxFiles: 1}, zipOf(t, five...), ":Mamori.Limit.MaxFiles :E.Body"},
		{"tar files", Limits{MaxFiles: 2}, tarOf(t, five...),
			"1:E.Hash 1:E.Body 2:E.Hash 2:E.Body :Mamori.Limit.MaxFiles :E.Body"},
		{"in memory", Limits{MaxInMemory: 100}, tarOf(t, member{"a.zip", zipOf(t, member{"pad", make([]byte, 200)}, member{"e.com", e})}),
			"a.zip:Mamori.Limit.MaxInMemory a.zip:E.Body :E.Body"},
		{"encrypted", Limits{}, enc.Bytes(), "secret.com:Mamori.Unscanned.Encrypted"},
		{"scan bytes", Limits{MaxScanBytes: 64}, append(make([]byte, 100), e...), ":Mamori.Limit.MaxScanBytes"},
		{"truncated stream", Limits{}, truncated, "cut.com:E.Body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(scanWith(t, set, tc.lim, "x", tc.data), " ")
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestScanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewScanner(eicarSet(t), Limits{}).ScanBytes(ctx, "x", []byte(eicar)); err == nil {
		t.Fatal("no error from a cancelled context")
	}
}
