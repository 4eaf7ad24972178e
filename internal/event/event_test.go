package event

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestSetGetKeepsSortedUnique(t *testing.T) {
	var e Event
	for _, kv := range [][2]string{{"source.ip", "1.2.3.4"}, {"a", "1"}, {"z", "26"}, {"m", "13"}, {"a", "one"}, {"empty", ""}} {
		e.Set(kv[0], kv[1])
	}
	want := []Field{{"a", "one"}, {"m", "13"}, {"source.ip", "1.2.3.4"}, {"z", "26"}}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Fatalf("fields = %v, want %v", e.Fields, want)
	}
	e.SetDefault("m", "x")
	e.SetDefault("b", "2")
	if e.Value("m") != "13" || e.Value("b") != "2" {
		t.Fatalf("SetDefault wrong: %v", e.Fields)
	}
	e.Delete("m")
	if _, ok := e.Get("m"); ok {
		t.Fatal("Delete left field")
	}
	if e.Kind() != KindEvent {
		t.Fatal("default kind")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	ts := time.Date(2015, 3, 4, 5, 6, 7, 8, time.UTC)
	in := []*Event{
		{ID: "a", Tenant: "acme", Source: "relp", Original: "héllo\x00world", Timestamp: ts, Ingested: ts.Add(time.Hour), Fields: []Field{{"host.name", "fw1"}, {"x", ""}}},
		{ID: "b", Tenant: "beta", Timestamp: ts, Ingested: ts},
	}
	b := AppendBatch(nil, in)
	out, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	view, err := DecodeBatchView(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i].Fields == nil {
			in[i].Fields = []Field{}
		}
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in[0], out[0])
	}
	if !reflect.DeepEqual(in, view) {
		t.Fatalf("view round trip:\n%+v\n%+v", in[0], view[0])
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeBatch(b[:i]); err == nil {
			t.Fatalf("truncated batch at %d decoded without error", i)
		}
	}
}

// TestViewDecoderReuse: a reused decoder gives, call after call, what
// DecodeBatch gives, whatever the sizes of the batches before.
func TestViewDecoderReuse(t *testing.T) {
	var vd ViewDecoder
	for round, n := range []int{3, 1, 500, 2, 0, 40} {
		in := make([]*Event, n)
		for i := range in {
			e := &Event{ID: fmt.Sprintf("r%d-%d", round, i), Tenant: "t", Timestamp: time.Unix(int64(i), 0).UTC(), Ingested: time.Unix(0, 0).UTC()}
			for j := 0; j < (i*7+round)%13; j++ {
				e.Set(fmt.Sprintf("f%02d", j), fmt.Sprintf("v%d-%d", round, j))
			}
			in[i] = e
		}
		b := AppendBatch(nil, in)
		want, err := DecodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := vd.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d events, want %d", round, len(got), len(want))
		}
		for i := range want {
			if len(got[i].Fields) == 0 {
				got[i].Fields = want[i].Fields // nil and empty are the same here
			}
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Fatalf("round %d event %d:\n%+v\n%+v", round, i, want[i], got[i])
			}
		}
	}
	if _, err := vd.Decode([]byte{1, 5}); err == nil {
		t.Fatal("corrupt batch decoded")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, []*Event{{ID: "x", Tenant: "t", Fields: []Field{{"a", "b"}}}}))
	f.Add([]byte{1, 255, 255, 255, 255, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeBatch(b)
		view, verr := DecodeBatchView(b)
		if (err == nil) != (verr == nil) || len(evs) != len(view) {
			t.Fatalf("DecodeBatch and DecodeBatchView disagree: %v / %v", err, verr)
		}
		if err != nil {
			return
		}
		// What decodes must re-encode to something that decodes the same.
		again, err := DecodeBatch(AppendBatch(nil, evs))
		if err != nil || len(again) != len(evs) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func TestIDGenUnique(t *testing.T) {
	g := NewIDGen()
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := g.Next()
		if seen[id] || len(id) != 32 {
			t.Fatalf("bad id %q", id)
		}
		seen[id] = true
	}
}

func BenchmarkCodec(b *testing.B) {
	e := &Event{ID: "0123456789abcdef0123456789abcdef", Tenant: "acme", Source: "syslog-tcp", Original: "<13>1 2026-11-25T10:00:00Z host app - - - some message text of moderate length here", Timestamp: time.Now(), Ingested: time.Now()}
	for _, n := range []string{"host.name", "log.syslog.appname", "message", "source.ip", "destination.port", "event.kind"} {
		e.Set(n, "value-"+n)
	}
	batch := make([]*Event, 1000)
	for i := range batch {
		batch[i] = e
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBatch(buf[:0], batch)
		if _, err := DecodeBatch(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
