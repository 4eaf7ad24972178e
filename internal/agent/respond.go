package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"

	"github.com/mamori-soc/mamori/internal/agent/cleanup"
	"github.com/mamori-soc/mamori/internal/agent/quarantine"
	"github.com/mamori-soc/mamori/internal/respond"
)

// The agent's own measures on its host: quarantine, restore, sample upload.

func (a *Agent) quarantineCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var args respond.Quarantine
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("quarantine arguments: %w", err)
	}
	if by, ok := a.cleaner.IsProtected(args.Path); ok {
		return nil, fmt.Errorf("%w: %s (protected by %s)", cleanup.ErrProtected, args.Path, by)
	}
	e, err := a.quar.Put(ctx, args.Path, quarantine.Reason{Kind: quarantine.ReasonManual, Note: args.Reason})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (a *Agent) restoreCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var args respond.QuarantineRef
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("restore arguments: %w", err)
	}
	return a.quar.Restore(ctx, args.ID)
}

// uploadCmd sends a quarantined object to the server's lab. The bytes go
// from the encrypted store straight to the request body: never written in
// clear to disk, never executed.
func (a *Agent) uploadCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var args respond.QuarantineRef
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("upload arguments: %w", err)
	}
	return a.uploadSample(ctx, args.ID)
}

func (a *Agent) uploadSample(ctx context.Context, id string) (json.RawMessage, error) {
	e, err := a.quar.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rc, err := a.quar.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	q := url.Values{"name": {e.Path}, "detection": {e.Reason.Signature}, "quarantine_id": {id}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/v1/agent/samples?"+q.Encode(), rc)
	if err != nil {
		return nil, err
	}
	req.ContentLength = e.Size
	a.authorize(req)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := a.o.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("upload sample: %s: %s", resp.Status, body)
	}
	return body, nil
}

// systemctl runs systemctl(1) for cleanup steps that stop and remove units.
func systemctl(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
