package bus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

func openEmbedded(t *testing.T, dir string, maxBytes int64) *Bus {
	t.Helper()
	b, err := Open(context.Background(), Options{DataDir: dir, MaxBytes: maxBytes, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func batch(ids ...string) []byte {
	var evs []*event.Event
	for _, id := range ids {
		evs = append(evs, &event.Event{ID: id, Tenant: "t", Original: "msg " + id, Timestamp: time.Unix(1, 0)})
	}
	return event.AppendBatch(nil, evs)
}

func TestPublishConsumeResume(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openEmbedded(t, dir, 1<<30)
	// The consumer must exist before publishing (interest retention).
	if err := b.EnsureConsumer(ctx, "test", ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	first := true
	go func() {
		defer wg.Done()
		_ = b.Consume(cctx, "test", ConsumeOptions{MaxWait: 20 * time.Millisecond}, func(_ context.Context, ds []Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if first {
				// Fail once: JetStream must redeliver.
				first = false
				return errors.New("transient")
			}
			for _, d := range ds {
				for _, e := range d.Events {
					got[e.ID]++
				}
			}
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 10; i++ {
		if err := b.Publish(ctx, batch(string(rune('a'+i))+"1", string(rune('a'+i))+"2"), ""); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of 20 distinct events", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	b.Close()

	// Restart on the same dir: acknowledged batches are not delivered again,
	// and a batch published while the consumer was away is.
	b2 := openEmbedded(t, dir, 1<<30)
	defer b2.Close()
	if err := b2.Publish(ctx, batch("late"), ""); err != nil {
		t.Fatal(err)
	}
	cctx2, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	var again []string
	_ = b2.Consume(cctx2, "test", ConsumeOptions{MaxWait: 20 * time.Millisecond}, func(_ context.Context, ds []Delivery) error {
		for _, d := range ds {
			for _, e := range d.Events {
				again = append(again, e.ID)
			}
		}
		cancel2()
		return nil
	})
	if len(again) != 1 || again[0] != "late" {
		t.Fatalf("after restart got %v, want [late]", again)
	}
	// Acks are asynchronous: give the server a moment to apply the last one.
	var info Info
	for i := 0; i < 50; i++ {
		var err error
		if info, err = b2.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.Messages == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info.Messages != 0 {
		t.Fatalf("interest retention kept %d acknowledged messages", info.Messages)
	}
}

func TestFullStreamPushesBack(t *testing.T) {
	ctx := context.Background()
	b := openEmbedded(t, t.TempDir(), 64<<10)
	defer b.Close()
	// A consumer that never acknowledges keeps every message.
	if err := b.EnsureConsumer(ctx, "stuck", ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 8<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = b.Publish(ctx, payload, "")
	}
	if !errors.Is(err, ErrFull) {
		info, _ := b.Info(ctx)
		t.Fatalf("publishing past max_bytes: got %v, want ErrFull (stream %+v)", err, info)
	}
}
