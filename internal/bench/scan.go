package bench

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// ScanOptions configures the scanner comparison.
type ScanOptions struct {
	Dir  string // files to scan; "" generates MB megabytes of files
	MB   int
	Hash int // hash signatures (md5 with size)
	Body int // body signatures, 8–40 bytes with wildcards
	Runs int // per tool; the best is reported
	Out  io.Writer
}

// Scan times mamori's scanner against clamscan and yara on the same files
// with an equivalent signature set (the same hashes and byte patterns,
// written in each tool's format). Each tool must find the planted sample,
// or its figure is not reported as comparable.
func Scan(ctx context.Context, o ScanOptions) error {
	if o.Hash+o.Body == 0 {
		o.Hash, o.Body = 100_000, 10_000
	}
	o.Runs = max(o.Runs, 1)
	tmp, err := os.MkdirTemp("", "mamori-bench-scan")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rng := rand.New(rand.NewPCG(7, 11))
	dir := o.Dir
	var planted []byte
	if dir == "" {
		dir = filepath.Join(tmp, "files")
		if planted, err = genFiles(dir, max(o.MB, 1), rng); err != nil {
			return err
		}
	}
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	sigs := filepath.Join(tmp, "sigs")
	if err := writeSigs(sigs, o.Hash, o.Body, planted, rng); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "scanning %s (%.0f MB) with %d hash + %d body signatures, best of %d\n", dir, float64(total)/1e6, o.Hash, o.Body, o.Runs)
	best := func(run func() (int, error)) (float64, int, error) {
		var secs float64
		var found int
		for i := range o.Runs + 1 { // the first run warms the page cache
			t0 := time.Now()
			n, err := run()
			if err != nil {
				return 0, 0, err
			}
			if d := time.Since(t0).Seconds(); i > 0 && (secs == 0 || d < secs) {
				secs, found = d, n
			}
		}
		return secs, found, nil
	}
	report := func(tool string, secs float64, found int, extra string) {
		fmt.Fprintf(o.Out, "scan tool=%s MB/s=%.0f seconds=%.2f detections=%d %s\n", tool, float64(total)/1e6/secs, secs, found, extra)
	}

	t0 := time.Now()
	set, warns, err := pattern.Load(filepath.Join(sigs, "bench.hdb"), filepath.Join(sigs, "bench.ndb"))
	if err != nil {
		return err
	}
	load := time.Since(t0).Seconds()
	if len(warns) > 0 {
		return fmt.Errorf("generated signatures rejected: %v", warns[0])
	}
	sc := pattern.NewScanner(set, pattern.DefaultLimits())
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		secs, found, err := best(func() (int, error) {
			n := 0
			err := sc.Walk(ctx, dir, workers, func(r pattern.FileResult) error { n += len(r.Detections); return nil })
			return n, err
		})
		if err != nil {
			return err
		}
		report("mamori", secs, found, fmt.Sprintf("workers=%d load_seconds=%.2f", workers, load))
	}
	if _, err := exec.LookPath("clamscan"); err == nil {
		secs, found, err := best(func() (int, error) {
			return runCount("clamscan", []string{"--no-summary", "-i", "-r", "-d", filepath.Join(sigs, "bench.hdb"), "-d", filepath.Join(sigs, "bench.ndb"), dir}, " FOUND")
		})
		if err != nil {
			return err
		}
		report("clamscan", secs, found, "workers=1 (clamscan is single-threaded; load included)")
	} else {
		fmt.Fprintln(o.Out, "clamscan not installed (apt-get install clamav): skipped")
	}
	if _, err := exec.LookPath("yara"); err == nil {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			secs, found, err := best(func() (int, error) {
				return runCount("yara", []string{"-r", "-p", fmt.Sprint(threads), filepath.Join(sigs, "bench.yar"), dir}, "")
			})
			if err != nil {
				return err
			}
			report("yara", secs, found, fmt.Sprintf("workers=%d (rule compilation included)", threads))
		}
	} else {
		fmt.Fprintln(o.Out, "yara not installed (apt-get install yara): skipped")
	}
	return nil
}

// runCount runs a scanner and counts output lines (containing marker).
func runCount(name string, args []string, marker string) (int, error) {
	out, err := exec.Command(name, args...).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: found
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && strings.Contains(l, marker) {
			n++
		}
	}
	return n, nil
}

// genFiles writes mb files of 1 MB, half random bytes, half text, and
// returns one file's content whose md5 the hash set will contain; a body
// signature is planted in another file.
func genFiles(dir string, mb int, rng *rand.Rand) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	words := strings.Fields("the quick brown fox jumps over lazy dog error warning user admin login failed password system service network connection")
	var first []byte
	for i := range mb {
		b := make([]byte, 1<<20)
		if i%2 == 0 {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		} else {
			var sb strings.Builder
			for sb.Len() < len(b) {
				sb.WriteString(words[rng.IntN(len(words))])
				sb.WriteByte(" \n"[rng.IntN(2)])
			}
			copy(b, sb.String())
		}
		if i == 1 {
			copy(b[1000:], plantedBody)
		}
		if i == 0 {
			first = b
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.bin", i)), b, 0o644); err != nil {
			return nil, err
		}
	}
	return first, nil
}

var plantedBody = []byte("MAMORI-PLANTED-BODY-SIGNATURE-0123456789")

// writeSigs writes bench.hdb, bench.ndb and bench.yar: the same hashes and
// byte patterns in ClamAV's and YARA's syntax.
func writeSigs(dir string, nHash, nBody int, planted []byte, rng *rand.Rand) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var hdb, ndb, yar strings.Builder
	yar.WriteString("import \"hash\"\n")
	for i := range nHash {
		var h [16]byte
		size := 1 + rng.IntN(1<<20)
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		if i == 0 && planted != nil {
			h, size = md5.Sum(planted), len(planted)
		}
		hx := hex.EncodeToString(h[:])
		fmt.Fprintf(&hdb, "%s:%d:Bench.Hash.%d\n", hx, size, i)
		fmt.Fprintf(&yar, "rule h%d { condition: filesize == %d and hash.md5(0, filesize) == \"%s\" }\n", i, size, hx)
	}
	for i := range nBody {
		n := 8 + rng.IntN(33)
		pat := make([]byte, n)
		for j := range pat {
			pat[j] = byte(rng.Uint32())
		}
		if i == 0 {
			pat = plantedBody
		}
		var cl, yh []string
		for j, c := range pat {
			if i > 0 && j > 3 && j < len(pat)-4 && j%11 == 0 { // a wildcard byte now and then
				cl, yh = append(cl, "??"), append(yh, "??")
				continue
			}
			cl, yh = append(cl, fmt.Sprintf("%02x", c)), append(yh, fmt.Sprintf("%02x", c))
		}
		fmt.Fprintf(&ndb, "Bench.Body.%d:0:*:%s\n", i, strings.Join(cl, ""))
		fmt.Fprintf(&yar, "rule b%d { strings: $a = { %s } condition: $a }\n", i, strings.Join(yh, " "))
	}
	for name, sb := range map[string]*strings.Builder{"bench.hdb": &hdb, "bench.ndb": &ndb, "bench.yar": &yar} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
