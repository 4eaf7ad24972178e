package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/agent/cleanup"
	"github.com/mamori-soc/mamori/internal/agent/quarantine"
	"github.com/mamori-soc/mamori/internal/agent/scanjob"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/respond"
)

// What the agent does with a detection (Options.OnDetect).
const (
	ActQuarantine = "quarantine" // run the cleanup definition for it, or quarantine the file
	ActReport     = "report"     // report only
)

// newScans builds the scan runner: on demand (the scan command), on a
// schedule and on file change, within the CPU and I/O limits.
func (a *Agent) newScans() {
	excl := scanjob.DefaultExcludes()
	if a.o.Dir != "" {
		excl = append(excl, a.o.Dir)
	}
	clean := knownClean()
	a.scans = scanjob.New(scanjob.Options{
		Scanner: a.Scanner, CPU: a.o.ScanCPU, IOBytesPerSec: a.o.ScanIO, Exclude: excl,
		OnDetection: a.onDetection, KnownClean: func(p string) bool { return slices.Contains(clean, p) },
		Logger: a.log.With("component", "scan"),
	})
	a.handlers[respond.KindScan] = a.scanCmd
}

// startScanning starts the scheduled scan and the file watch, as
// configured.
func (a *Agent) startScanning(ctx context.Context) {
	if a.o.ScanEvery > 0 && len(a.o.ScanPaths) > 0 {
		go func() {
			_ = a.scans.Schedule(ctx, a.o.ScanEvery, scanjob.Request{Paths: a.o.ScanPaths, Reason: "scheduled"})
		}()
	}
	if len(a.o.Watch) > 0 {
		go func() {
			if err := a.scans.Watch(ctx, a.o.Watch); err != nil && ctx.Err() == nil {
				a.log.Error("file watch stopped", "err", err)
			}
		}()
	}
}

func (a *Agent) scanCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var args respond.Scan
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("scan arguments: %w", err)
	}
	return a.scans.Scan(ctx, scanjob.Request{Paths: args.Paths, Reason: "on-demand"})
}

// detectionEvent is what the SOC sees of a detection: an ECS event in the
// agent's tenant, through the ingest pipeline like any other log.
type detectionEvent struct {
	Timestamp time.Time      `json:"@timestamp"`
	Message   string         `json:"message"`
	Event     map[string]any `json:"event"`
	File      map[string]any `json:"file"`
	Rule      map[string]any `json:"rule"`
	Host      map[string]any `json:"host"`
	Agent     map[string]any `json:"agent"`
	Mamori    map[string]any `json:"mamori,omitempty"`
}

// onDetection acts on a detection: the cleanup definition for its
// signature or, without one, quarantine of the file — unless the file is
// known-clean (a system file: a false positive is far likelier than a
// replaced binary, and removing it would break the host; it is reported
// and counted as a clean hit instead) or the agent only reports. The SOC
// gets an event either way.
func (a *Agent) onDetection(ctx context.Context, d pattern.Detection) {
	// A file matching several signatures (or holding several detected
	// members) is acted on and reported once.
	key := d.Path
	a.mu.Lock()
	if at, ok := a.recent[key]; ok && time.Since(at) < time.Minute {
		a.mu.Unlock()
		a.log.Info("further detection in a file already handled", "path", key, "signature", d.Signature)
		return
	}
	for k, at := range a.recent {
		if time.Since(at) >= time.Minute {
			delete(a.recent, k)
		}
	}
	a.recent[key] = time.Now()
	a.mu.Unlock()
	action, outcome := "reported", map[string]any{}
	switch {
	case a.o.OnDetect == ActReport || a.quar == nil:
	case slices.Contains(knownClean(), d.Path):
		action = "not_quarantined_known_clean"
	default:
		if def, ok := cleanup.Find(a.cleanupDefs(), d.Signature); ok {
			rep, err := a.cleaner.Run(ctx, def, cleanup.TargetOf(d))
			action, outcome["cleanup"] = "cleaned", rep
			if err != nil {
				action, outcome["error"] = "cleanup_incomplete", err.Error()
			}
			break
		}
		if by, ok := a.cleaner.IsProtected(d.Path); ok {
			action, outcome["protected_by"] = "not_quarantined_protected", by
			break
		}
		e, err := a.quar.Put(ctx, d.Path, quarantine.Reason{Kind: quarantine.ReasonDetection, Signature: d.Signature})
		if err != nil {
			action, outcome["error"] = "quarantine_failed", err.Error()
			break
		}
		action, outcome["quarantine_id"] = "quarantined", e.ID
		if a.o.UploadSamples {
			if _, err := a.uploadSample(ctx, e.ID); err != nil {
				outcome["upload_error"] = err.Error()
			} else {
				outcome["uploaded"] = true
			}
		}
	}
	a.log.Warn("malware detected", "path", d.Location(), "signature", d.Signature, "action", action)
	ev := detectionEvent{
		Timestamp: time.Now().UTC(),
		Message:   fmt.Sprintf("malware %s detected in %s: %s", d.Signature, d.Location(), action),
		Event:     map[string]any{"kind": "alert", "category": []string{"malware"}, "type": []string{"info"}, "module": "mamori-agent", "action": action},
		File:      map[string]any{"path": d.Path, "name": filepath.Base(d.Path)},
		Rule:      map[string]any{"name": d.Signature},
		Host:      map[string]any{"name": a.o.Info.Hostname, "os": map[string]any{"type": a.o.Info.OS}},
		Agent:     map[string]any{"id": a.id.AgentID, "type": "mamori", "version": a.o.Info.Version},
		Mamori:    map[string]any{"detection": map[string]any{"kind": string(d.Kind), "container": d.Container, "offset": d.Offset}, "response": outcome},
	}
	b, _ := json.Marshal(ev)
	if err := a.send(ctx, "/api/v1/agent/logs", "application/x-ndjson", append(b, '\n')); err != nil {
		a.log.Error("report detection", "err", err)
	}
}

// cleanupDefs are the cleanup definitions of the active cleanup channel.
func (a *Agent) cleanupDefs() []cleanup.Definition {
	a.mu.Lock()
	in := a.installed["cleanup"]
	a.mu.Unlock()
	if in == nil {
		return nil
	}
	lines := make([]string, 0, len(in.Records))
	for _, r := range in.Records {
		if strings.HasPrefix(string(r), "cleanup ") {
			lines = append(lines, string(r))
		}
	}
	defs, err := cleanup.Decode(lines)
	if err != nil {
		a.log.Error("cleanup definitions", "version", in.Version, "err", err)
	}
	return defs
}
