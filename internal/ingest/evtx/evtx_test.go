package evtx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mamori-soc/mamori/internal/testutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func corpus(t *testing.T, sub string) string {
	t.Helper()
	return testutil.Corpus(t, filepath.Join("evtx", sub))
}

// manifestEntry is one file of MANIFEST.reference-counts.json (python-evtx
// 0.6.1 counts).
type manifestEntry struct {
	File                string         `json:"file"`
	Records             int            `json:"records"`
	RecordErrors        int            `json:"record_errors"`
	Channels            map[string]int `json:"channels"`
	ChannelEventIDCount map[string]int `json:"channel_eventid_counts"`
	Computers           []string       `json:"computers"`
	First               string         `json:"first"`
	Last                string         `json:"last"`
	Error               string         `json:"error"`
}

func loadManifest(t *testing.T, dir string) []manifestEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.reference-counts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m []manifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fileResult is what Read saw in one file.
type fileResult struct {
	records, errs int
	err           error
	chanEID       map[string]int
	first, last   time.Time
}

func readFile(t *testing.T, path string) fileResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := fileResult{chanEID: map[string]int{}}
	res.records, res.errs, res.err = Read(f, func(rec map[string]any) error {
		if err := checkRecord(rec); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		ch, _ := rec[FieldChannel].(string)
		res.chanEID[fmt.Sprintf("%s:%v", ch, rec[FieldEventID])]++
		if ts, ok := rec[FieldTimestamp].(string); ok {
			tt, _ := time.Parse(time.RFC3339Nano, ts)
			if res.first.IsZero() || tt.Before(res.first) {
				res.first = tt
			}
			if tt.After(res.last) {
				res.last = tt
			}
		}
		return nil
	})
	return res
}

// checkRecord asserts the shape every record must have.
func checkRecord(rec map[string]any) error {
	for _, k := range []string{FieldTimestamp, FieldEventID, FieldEventCode, FieldProvider, FieldKind, FieldRecordID} {
		if _, ok := rec[k]; !ok {
			return fmt.Errorf("record lacks %s: %v", k, rec)
		}
	}
	if _, ok := rec["message"]; ok {
		return errors.New("record has a message")
	}
	if _, err := json.Marshal(rec); err != nil {
		return fmt.Errorf("not JSON-ready: %w", err)
	}
	for k := range rec {
		if k == "" || strings.HasSuffix(k, ".") {
			return fmt.Errorf("bad key %q", k)
		}
	}
	return nil
}

// TestSbousseadenCounts compares record counts with python-evtx's
// reference counts.
func TestSbousseadenCounts(t *testing.T) {
	dir := corpus(t, "sbousseaden-EVTX-ATTACK-SAMPLES")
	compareFolder(t, dir, true)
}

// TestOtherFolders reads the other corpora and logs the comparison; the
// mdecrevoisier folder has files python-evtx itself could not read.
func TestOtherFolders(t *testing.T) {
	for _, sub := range []string{"mdecrevoisier-EVTX-to-MITRE-Attack", "chainsaw-tests"} {
		dir := corpus(t, sub)
		t.Run(sub, func(t *testing.T) { compareFolder(t, dir, false) })
	}
}

func compareFolder(t *testing.T, dir string, strict bool) {
	man := loadManifest(t, dir)
	var refTotal, gotTotal, exact, refClean, cleanSame, errsTotal int
	var diffs []string
	for _, m := range man {
		r := readFile(t, filepath.Join(dir, m.File))
		if r.err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: error %v (python-evtx: %d records, error %q)", m.File, r.err, m.Records, m.Error))
			if strict {
				t.Errorf("%s: %v", m.File, r.err)
			}
			continue
		}
		refTotal += m.Records
		gotTotal += r.records
		errsTotal += r.errs
		if r.records == m.Records {
			exact++
		} else {
			diffs = append(diffs, fmt.Sprintf("%s: %d records (%d errs), python-evtx %d (%d errors)", m.File, r.records, r.errs, m.Records, m.RecordErrors))
		}
		if m.RecordErrors == 0 && m.Error == "" {
			refClean++
			if r.records == m.Records {
				cleanSame++
				// Same records: the per Channel:EventID counts must agree too.
				for k, v := range m.ChannelEventIDCount {
					if r.chanEID[k] != v {
						t.Errorf("%s: %s = %d, python-evtx %d", m.File, k, r.chanEID[k], v)
					}
				}
			} else if strict {
				t.Errorf("%s: %d records, python-evtx read %d with 0 errors", m.File, r.records, m.Records)
			}
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Log("differs: " + d)
	}
	t.Logf("%s: %d files, %d with the same record count as python-evtx; %d of %d error-free (python-evtx) files identical; records %d vs reference %d; our record errors %d",
		filepath.Base(dir), len(man), exact, cleanSame, refClean, gotTotal, refTotal, errsTotal)
	if strict && gotTotal < refTotal {
		t.Errorf("read %d records, reference total %d", gotTotal, refTotal)
	}
}

func TestRecordShape(t *testing.T) {
	dir := corpus(t, "sbousseaden-EVTX-ATTACK-SAMPLES")
	f, err := os.Open(filepath.Join(dir, "Defense Evasion", "DE_104_system_log_cleared.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []map[string]any
	n, errs, err := Read(f, func(rec map[string]any) error { got = append(got, rec); return nil })
	if err != nil || n != 1 || errs != 0 {
		t.Fatalf("n=%d errs=%d err=%v", n, errs, err)
	}
	want := map[string]any{
		"@timestamp": "2019-03-19T23:34:25.894341Z", "winlog.event_id": uint64(104), "event.code": "104",
		"winlog.channel": "System", "winlog.provider_name": "Microsoft-Windows-Eventlog", "event.provider": "Microsoft-Windows-Eventlog",
		"winlog.computer_name": "PC01.example.corp", "host.name": "PC01.example.corp", "winlog.record_id": uint64(27736),
		"winlog.process.pid": uint64(812), "winlog.user.identifier": "S-1-5-21-1587066498-1489273250-1035260531-1106",
		"winlog.event_data.SubjectUserName": "user01", "winlog.event_data.SubjectDomainName": "EXAMPLE", "event.kind": "event",
	}
	for k, v := range want {
		if fmt.Sprint(got[0][k]) != fmt.Sprint(v) {
			t.Errorf("%s = %#v, want %#v", k, got[0][k], v)
		}
	}
	// The callback's error stops reading and is returned as is.
	stop := errors.New("stop")
	f.Seek(0, 0)
	if _, _, err := Read(f, func(map[string]any) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
}

func TestNotEVTX(t *testing.T) {
	n, errs, err := Read(bytes.NewReader([]byte("not an evtx file at all, definitely not")), func(map[string]any) error { return nil })
	if err == nil || n != 0 || errs != 0 {
		t.Fatalf("n=%d errs=%d err=%v", n, errs, err)
	}
	n, _, err = Read(bytes.NewReader(nil), func(map[string]any) error { return nil })
	if err == nil || n != 0 {
		t.Fatalf("empty: n=%d err=%v", n, err)
	}
}

// TestDamagedFiles flips bytes in a real file: Read must not panic or hang
// and must report what it could not decode.
func TestDamagedFiles(t *testing.T) {
	dir := corpus(t, "sbousseaden-EVTX-ATTACK-SAMPLES")
	orig, err := os.ReadFile(filepath.Join(dir, "UACME_59_Sysmon.evtx"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		b := bytes.Clone(orig)
		for k := 0; k < 1+i%8; k++ {
			pos := 4096 + (i*7919+k*104729)%(len(b)-4096)
			b[pos] ^= byte(1 + (i+k)%255)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Read(bytes.NewReader(b), func(rec map[string]any) error {
				_, err := json.Marshal(rec)
				return err
			})
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("mutation %d: Read did not finish", i)
		}
	}
}
