package anomaly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Phase says where in its episode a Signal is.
type Phase string

// Phases of an episode: one start, an update per closed minute while it
// lasts, one end.
const (
	PhaseStart  Phase = "start"
	PhaseUpdate Phase = "update"
	PhaseEnd    Phase = "end"
)

// Signal reports one minute of a surge episode for one group.
type Signal struct {
	Stream string `json:"stream"`
	Tenant string `json:"tenant"`
	// Group holds the group-by field values (empty for a stream without By).
	Group map[string]string `json:"group"`
	// Start is the first breaching minute of the episode; Minute the minute
	// this signal reports (both the start of the minute, UTC).
	Start  time.Time `json:"start"`
	Minute time.Time `json:"minute"`
	// Observed is the count in Minute (so far, for a start signal: an
	// episode starts the moment the count crosses the threshold), Expected
	// the baseline for it, Ratio Observed / max(Expected, 1), Threshold the
	// count that breaches.
	Observed  float64 `json:"observed"`
	Expected  float64 `json:"expected"`
	Ratio     float64 `json:"ratio"`
	Threshold float64 `json:"threshold"`
	Severity  string  `json:"severity"`
	// ID is stable for the whole episode (and across Snapshot/Restore):
	// callers deduplicate by it.
	ID    string `json:"id"`
	Phase Phase  `json:"phase"`
}

// episode is one group's surge state; exported fields for snapshots.
type episode struct {
	Breaches   uint64 // bit i set: minute LastEval-i breached
	Active     bool
	ID         string
	Start      int64 // minute
	LastBreach int64 // minute
}

// episodeID derives a stable id from what identifies an episode, so the
// same replay or a restored detector gives the same id.
func episodeID(tenant, stream, key string, start int64) string {
	h := sha256.New()
	for _, s := range [...]string{tenant, stream, key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func minuteTime(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

func minuteOf(t time.Time) int64 { return floorDiv(t.Unix(), 60) }
