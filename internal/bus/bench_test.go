package bus

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkPublish measures storing 1 MiB batches on the embedded bus with
// four publishers in flight, as the ingest pipeline does.
func BenchmarkPublish(b *testing.B) {
	bus, err := Open(context.Background(), Options{DataDir: b.TempDir(), MaxBytes: 4 << 30, MaxAge: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = bus.Consume(ctx, "bench", ConsumeOptions{Workers: 2}, func(context.Context, []Delivery) error { return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	payload := make([]byte, 1<<20)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	var wg sync.WaitGroup
	ch := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
				if err := bus.Publish(ctx, payload, ""); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		ch <- struct{}{}
	}
	close(ch)
	wg.Wait()
}
