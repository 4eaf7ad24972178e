package fleet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/state"
)

// BenchmarkFlushAfterRelease: what the write-behind costs when every agent
// of a fleet of 10,000 reported a release and sent a heartbeat.
func BenchmarkFlushAfterRelease(b *testing.B) {
	ctx := context.Background()
	db, err := state.Open(ctx, filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f, err := Open(ctx, db.SQL(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range 10000 {
		a, _, err := f.Enroll(ctx, "acme", Info{Hostname: "pc"})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for _, id := range ids {
			_ = f.Heartbeat(id, Info{Hostname: "pc"}, Health{Scans: int64(i)})
			_ = f.Report(id, Install{Channel: "bandage", Version: uint64(i + 1), Status: StatusActive, At: time.Now()})
		}
		b.StartTimer()
		if err := f.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
