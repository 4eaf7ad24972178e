package api

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/update"
)

// testState opens a state database and a fleet in dir.
func testState(t *testing.T, dir string) (*state.DB, *fleet.Fleet) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fl, err := fleet.Open(ctx, st.SQL(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st, fl
}

// testRepo is a signed pattern repository in dir (root 1-of-1).
func testRepo(t *testing.T, dir string) *update.Repo {
	t.Helper()
	root, err := update.GenerateRootKeys(filepath.Join(dir, "keys", "root"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	online, err := update.GenerateOnlineKeys(filepath.Join(dir, "keys", "online"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := update.InitRepo(filepath.Join(dir, "update"), root, online, update.RepoOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}
