package server

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/rollout"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/update"
)

// patterns is pattern distribution on the server: the agent registry, the
// signed release repository and its endpoints.
type patterns struct {
	fleet      *fleet.Fleet
	repo       *update.Repo
	rollouts   *rollout.Controller
	handler    http.Handler
	knownClean map[string]string // md5/sha1/sha256 hex → file
	cancel     context.CancelFunc
	done       chan struct{}
}

// openPatterns opens the fleet and the repository; on first start it
// creates the signing keys: the online ones in <keys>/online, the offline
// root keys (2 of 3) in <keys>/root with a warning to move them off the
// server (they are needed again only to change the root).
func openPatterns(ctx context.Context, cfg config.Config, st *state.DB, log *slog.Logger) (*patterns, error) {
	if !cfg.Patterns.Enabled {
		return nil, nil
	}
	log = log.With("component", "patterns")
	fl, err := fleet.Open(ctx, st.SQL(), fleet.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	keys := cfg.Patterns.Keys
	if keys == "" {
		keys = filepath.Join(cfg.Data, "keys")
	}
	dir := filepath.Join(cfg.Data, "update")
	opts := update.RepoOptions{Logger: log}
	var repo *update.Repo
	if _, err := os.Stat(filepath.Join(dir, "metadata", "timestamp.json")); err == nil {
		online, err := update.LoadOnlineKeys(filepath.Join(keys, "online"))
		if err != nil {
			return nil, fmt.Errorf("pattern repository: %w", err)
		}
		if repo, err = update.OpenRepo(dir, online, opts); err != nil {
			return nil, fmt.Errorf("pattern repository: %w", err)
		}
	} else {
		root, err := update.GenerateRootKeys(filepath.Join(keys, "root"), 3, 2)
		if err != nil {
			return nil, fmt.Errorf("pattern repository keys: %w", err)
		}
		online, err := update.GenerateOnlineKeys(filepath.Join(keys, "online"))
		if err != nil {
			return nil, fmt.Errorf("pattern repository keys: %w", err)
		}
		if repo, err = update.InitRepo(dir, root, online, opts); err != nil {
			return nil, fmt.Errorf("pattern repository: %w", err)
		}
		log.Warn("pattern repository created: move the offline root keys off this server; they are needed only to change the root",
			"root_keys", filepath.Join(keys, "root"))
	}
	stages, err := parseRings(cfg.Patterns.Rings)
	if err != nil {
		return nil, err
	}
	gates := gatesOf(cfg.Patterns.Gates)
	var perTenant bool
	switch cfg.Patterns.RingScope {
	case "global", "":
	case "tenant":
		perTenant = true
	default:
		return nil, fmt.Errorf("%w: patterns.ring_scope %q: global or tenant", config.ErrInvalid, cfg.Patterns.RingScope)
	}
	ro, err := rollout.Open(ctx, st.SQL(), fl, repo, rollout.Options{Stages: stages, Soak: cfg.Patterns.Soak.D(), PerTenant: perTenant, Gates: &gates, Logger: log})
	if err != nil {
		return nil, err
	}
	p := &patterns{fleet: fl, repo: repo, handler: update.Handler(repo), done: make(chan struct{}), rollouts: ro}
	if p.knownClean, err = hashKnownClean(cfg.Patterns.KnownClean); err != nil {
		return nil, err
	}
	if n := len(p.knownClean); n > 0 {
		log.Info("known-clean files hashed", "hashes", n)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go p.run(rctx, log)
	return p, nil
}

// run flushes the fleet and keeps the signed timestamp fresh while nothing
// is published.
func (p *patterns) run(ctx context.Context, log *slog.Logger) {
	defer close(p.done)
	go p.rollouts.Run(ctx, time.Second)
	flush, refresh := time.NewTicker(time.Second), time.NewTicker(time.Hour)
	defer flush.Stop()
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := p.fleet.Flush(context.Background()); err != nil {
				log.Error("fleet flush at shutdown", "err", err)
			}
			return
		case <-flush.C:
			if err := p.fleet.Flush(ctx); err != nil {
				log.Warn("fleet flush", "err", err)
			}
		case <-refresh.C:
			if err := p.repo.RefreshTimestamp(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("refresh pattern timestamp", "err", err)
			}
		}
	}
}

func (p *patterns) close() {
	p.cancel()
	<-p.done
}

// parseRings reads "1,10,50,100": ascending percentages ending at 100.
func parseRings(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("%w: patterns.rings %q: ascending percentages 1-100 ending at 100", config.ErrInvalid, s)
		}
		out = append(out, n)
	}
	if len(out) == 0 || out[len(out)-1] != 100 {
		return nil, fmt.Errorf("%w: patterns.rings %q must end at 100", config.ErrInvalid, s)
	}
	return out, nil
}

// gatesOf turns patterns.gates into the rollout's health gates; disabled,
// a rollout halts on refusals only.
func gatesOf(g config.GatesConfig) rollout.Gates {
	if !g.Enabled {
		return rollout.Gates{}
	}
	return rollout.Gates{CleanHits: int64(g.CleanHits), EngineRestarts: int64(g.EngineRestarts), ScanErrorRate: g.ScanErrorRate,
		CPUFactor: g.CPUFactor, CPUFloorMillis: float64(g.CPUFloor.D()) / float64(time.Millisecond), MinScans: int64(g.MinScans), SelfTest: g.SelfTest}
}

// isKnownClean is the API's bandage guard.
func (p *patterns) isKnownClean(hash string) (string, bool) {
	f, ok := p.knownClean[hash]
	return f, ok
}

// hashKnownClean hashes every regular file under dirs (md5, sha1 and
// sha256, as hash signatures use all three).
func hashKnownClean(dirs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil // unreadable entries are skipped: the set is a guard, not an inventory
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			m, s1, s2 := md5.New(), sha1.New(), sha256.New()
			if _, err := io.Copy(io.MultiWriter(m, s1, s2), f); err != nil {
				return nil
			}
			for _, h := range [][]byte{m.Sum(nil), s1.Sum(nil), s2.Sum(nil)} {
				out[hex.EncodeToString(h)] = p
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("patterns.known_clean %s: %w", d, err)
		}
	}
	return out, nil
}
