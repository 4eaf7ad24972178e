package agent

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// A running agent keeps a marker file; finding it at start means the last
// run did not end cleanly (a crash, a kill, a power cut). Those unclean
// restarts are counted on disk, so that a crash loop shows in the health
// the rollout gates judge even though every process starts from zero.
const (
	runningFile  = "running"
	restartsFile = "restarts.json"
)

// countRestart notes this start, counting it when the previous run ended
// uncleanly, and returns the unclean restarts so far.
func countRestart(dir string) (int64, error) {
	var st struct {
		Unclean int64 `json:"unclean_restarts"`
	}
	p := filepath.Join(dir, restartsFile)
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	marker := filepath.Join(dir, runningFile)
	if _, err := os.Stat(marker); err == nil {
		st.Unclean++
		b, _ := json.Marshal(st)
		if err := writeFileAtomic(p, b); err != nil {
			return st.Unclean, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return st.Unclean, err
	}
	return st.Unclean, os.WriteFile(marker, nil, 0o600)
}

// cleanExit removes the marker: this run ends as it should.
func cleanExit(dir string) { _ = os.Remove(filepath.Join(dir, runningFile)) }
