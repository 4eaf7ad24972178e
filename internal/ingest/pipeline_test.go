package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func openBus(t *testing.T, maxBytes int64) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), MaxBytes: maxBytes, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// consume collects every event id delivered to a durable consumer.
func consume(t *testing.T, b *bus.Bus, block <-chan struct{}) (func() map[string]int, context.CancelFunc) {
	if err := b.EnsureConsumer(context.Background(), "test", bus.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[string]int{}
	ready := make(chan struct{})
	go func() {
		once := sync.Once{}
		go func() { time.Sleep(200 * time.Millisecond); once.Do(func() { close(ready) }) }()
		_ = b.Consume(ctx, "test", bus.ConsumeOptions{MaxWait: 10 * time.Millisecond}, func(ctx context.Context, ds []bus.Delivery) error {
			if block != nil {
				select {
				case <-block:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				for _, e := range d.Events {
					seen[e.Original]++
				}
			}
			return nil
		})
	}()
	<-ready
	t.Cleanup(cancel)
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}, cancel
}

func TestPipelineDurableAndComplete(t *testing.T) {
	b := openBus(t, 1<<30)
	seen, _ := consume(t, b, nil)
	m := NewMetrics(prometheus.NewRegistry())
	p := NewPipeline(b, PipelineOptions{BatchEvents: 100, BatchWait: 5 * time.Millisecond, MaxPending: 1000, Metrics: m})
	ctx := context.Background()
	var tickets []*Ticket
	for i := 0; i < 50; i++ {
		var frames [][]byte
		for j := 0; j < 37; j++ {
			frames = append(frames, []byte(fmt.Sprintf("<13>1 2026-11-25T10:00:00Z h app - - - n=%d", i*37+j)))
		}
		tk, err := p.Submit(ctx, Origin{Tenant: "t", Source: "test"}, frames)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	for _, tk := range tickets {
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Pending() != 0 {
		t.Fatalf("pending %d after close", p.Pending())
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(seen()) < 50*37 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := seen()
	if len(got) != 50*37 {
		t.Fatalf("consumer saw %d distinct events, want %d", len(got), 50*37)
	}
	for k, v := range got {
		if v != 1 {
			t.Fatalf("%s delivered %d times", k, v)
		}
	}
}

// TestPipelineBackpressure: with a consumer that does not acknowledge and a
// tiny stream, the bus fills; TrySubmit then refuses with ErrBusy, Submit
// blocks, and once the consumer resumes everything arrives.
func TestPipelineBackpressure(t *testing.T) {
	b := openBus(t, 256<<10)
	release := make(chan struct{})
	seen, _ := consume(t, b, release)
	p := NewPipeline(b, PipelineOptions{BatchEvents: 50, BatchWait: 2 * time.Millisecond, MaxPending: 500})
	ctx := context.Background()
	frame := func(i int) [][]byte {
		return [][]byte{[]byte(fmt.Sprintf("bp-%d %0200d", i, i))}
	}
	sent := 0
	deadline := time.Now().Add(20 * time.Second)
	var busyErr error
	for time.Now().Before(deadline) {
		_, err := p.TrySubmit(ctx, Origin{Tenant: "t", Source: "test"}, frame(sent))
		if err != nil {
			busyErr = err
			break
		}
		sent++
	}
	if !errors.Is(busyErr, ErrBusy) {
		t.Fatalf("TrySubmit never refused after %d events: %v", sent, busyErr)
	}
	// A blocking Submit of a pending limit's worth of events waits while a
	// refused batch is still pending.
	var big [][]byte
	for i := 0; i < 500; i++ {
		big = append(big, frame(sent + i)[0])
	}
	done := make(chan error, 1)
	go func() {
		tk, err := p.Submit(ctx, Origin{Tenant: "t", Source: "test"}, big)
		if err == nil {
			err = tk.Wait(ctx)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Submit returned while the bus was full: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Submit still blocked after the consumer resumed")
	}
	sent += len(big)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) && len(seen()) < sent {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(seen()); got != sent {
		t.Fatalf("after backpressure: %d of %d events delivered", got, sent)
	}
}

func TestRouterOrder(t *testing.T) {
	r := NewRouter("default")
	if err := r.Load(Mappings{CIDRs: map[string]string{"10.0.0.0/8": "wide", "10.1.0.0/16": "narrow"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listener, ip, want string
	}{
		{"", "10.1.2.3", "narrow"},
		{"", "10.2.2.3", "wide"},
		{"", "192.0.2.1", "default"},
		{"dedicated", "10.1.2.3", "dedicated"},
		{"", "::ffff:10.1.0.1", "narrow"},
	} {
		got, err := r.Resolve(tc.listener, netip.MustParseAddr(tc.ip), nil)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q, %s) = %q, %v; want %q", tc.listener, tc.ip, got, err, tc.want)
		}
	}
	strict := NewRouter("")
	if _, err := strict.Resolve("", netip.MustParseAddr("192.0.2.1"), nil); !errors.Is(err, ErrUnmapped) {
		t.Fatalf("unmapped with reject: %v", err)
	}
}

var _ = event.KindUnparsed

// TestMetricsWithoutTenantLabel: with many tenants the label collapses.
func TestMetricsWithoutTenantLabel(t *testing.T) {
	b := openBus(t, 1<<30)
	consume(t, b, nil)
	m := NewMetrics(prometheus.NewRegistry())
	m.NoTenantLabel = true
	p := NewPipeline(b, PipelineOptions{Metrics: m})
	ctx := context.Background()
	for _, tenant := range []string{"a", "b", "c"} {
		tk, err := p.Submit(ctx, Origin{Tenant: tenant, Source: "test"}, [][]byte{[]byte("<13>1 2026-11-25T10:00:00Z h app - - - x"), []byte("garbage")})
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close(ctx)
	if got := promtest.ToFloat64(m.Events.WithLabelValues("_all", "test", "parsed")); got != 3 {
		t.Fatalf("parsed under _all = %v, want 3", got)
	}
	if got := promtest.ToFloat64(m.Events.WithLabelValues("_all", "test", "unparsed")); got != 3 {
		t.Fatalf("unparsed under _all = %v, want 3", got)
	}
	if n := promtest.CollectAndCount(m.Events); n != 2 {
		t.Fatalf("%d series, want 2 (no per-tenant series)", n)
	}
}
