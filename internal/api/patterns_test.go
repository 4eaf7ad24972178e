package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-soc/mamori/internal/rollout"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/update"
)

// patternServer is an API with a real state database, fleet, signed
// repository (main: 1, 2, and 3 rolling 2 back) and rollout controller.
func patternServer(t *testing.T) (h http.Handler, tokens map[string]string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, fl := testState(t, dir)
	repo := testRepo(t, dir)
	ro, err := rollout.Open(ctx, st.SQL(), fl, repo, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range []update.Records{
		{[]byte("hash A 3395856ce81f2b7382dee72602f798b642f14140:68"), []byte("hash B 44d88612fea8a8f36de82e1278abb02f:68")},
		{[]byte("hash A 3395856ce81f2b7382dee72602f798b642f14140:68"), []byte("hash C 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68")},
	} {
		if _, _, err := ro.Publish(ctx, "main", recs, update.PublishOptions{}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ro.Publish(ctx, "main", nil, update.PublishOptions{RollbackTo: 1}, true); err != nil {
		t.Fatal(err)
	}
	tokens = map[string]string{}
	for _, tn := range []string{"acme", "other"} {
		if _, err := st.AddTenant(ctx, tn, 0); err != nil {
			t.Fatal(err)
		}
		secret, _, err := st.CreateToken(ctx, state.TokenRead, tn, "reader")
		if err != nil {
			t.Fatal(err)
		}
		tokens[tn] = secret
	}
	admin, _, err := st.CreateToken(ctx, state.TokenAdmin, "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	tokens["admin"] = admin
	s := &Server{State: st, Fleet: fl, Releases: repo, Rollouts: ro, Metrics: NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)}
	return s.Handler(), tokens
}

func TestPolicyAndDiffEndpoints(t *testing.T) {
	h, tok := patternServer(t)
	do := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code, field                     string // problem details
		check                           func(t *testing.T, out map[string]any)
	}{
		{name: "set needs an admin", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "acme", body: `{"mode":"pin","version":1}`, status: 403, code: CodeForbidden},
		{name: "set names a tenant", method: "PUT", path: "/api/v1/patterns/main/policy", token: "admin", body: `{"mode":"pin","version":1}`, status: 400, code: CodeBadRequest, field: "tenant"},
		{name: "unknown tenant", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=nobody", token: "admin", body: `{"mode":"pin","version":1}`, status: 404, code: CodeTenantUnknown, field: "tenant"},
		{name: "bad channel", method: "PUT", path: "/api/v1/patterns/Main!/policy?tenant=acme", token: "admin", body: `{"mode":"latest"}`, status: 400, code: CodeBadRequest, field: "channel"},
		{name: "unknown mode", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"newest"}`, status: 400, code: CodePolicyInvalid, field: "mode"},
		{name: "bad delay", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"delay","delay":"soon"}`, status: 400, code: CodePolicyInvalid, field: "delay"},
		{name: "delay too short", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"delay","delay":"5s"}`, status: 400, code: CodePolicyInvalid, field: "delay"},
		{name: "pin unknown version", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"pin","version":9}`, status: 404, code: CodeNotFound, field: "version"},
		{name: "pin rolled-back version", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"pin","version":2}`, status: 409, code: CodeReleaseRolledBack, field: "version"},
		{name: "pin", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"pin","version":1}`, status: 200, check: func(t *testing.T, out map[string]any) {
			if out["mode"] != "pin" || out["version"] != 1.0 || out["tenant"] != "acme" {
				t.Errorf("%v", out)
			}
		}},
		{name: "delay", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=other", token: "admin", body: `{"mode":"delay","delay":"6h"}`, status: 200, check: func(t *testing.T, out map[string]any) {
			if out["mode"] != "delay" || out["delay"] != "6h" || out["delay_seconds"] != 21600.0 {
				t.Errorf("%v", out)
			}
		}},
		{name: "a tenant reads its own", method: "GET", path: "/api/v1/patterns/main/policy", token: "acme", status: 200, check: func(t *testing.T, out map[string]any) {
			ps, _ := out["policies"].([]any)
			if len(ps) != 1 || ps[0].(map[string]any)["tenant"] != "acme" || ps[0].(map[string]any)["mode"] != "pin" {
				t.Errorf("%v", out)
			}
		}},
		{name: "not another's", method: "GET", path: "/api/v1/patterns/main/policy?tenant=acme", token: "other", status: 403, code: CodeForbidden},
		{name: "an admin reads all", method: "GET", path: "/api/v1/patterns/main/policy", token: "admin", status: 200, check: func(t *testing.T, out map[string]any) {
			if ps, _ := out["policies"].([]any); len(ps) < 2 {
				t.Errorf("%v", out)
			}
		}},
		{name: "status shows policies", method: "GET", path: "/api/v1/patterns/main/1", token: "acme", status: 200, check: func(t *testing.T, out map[string]any) {
			if ps, _ := out["policies"].([]any); len(ps) != 1 {
				t.Errorf("%v", out)
			}
		}},
		{name: "diff", method: "GET", path: "/api/v1/patterns/main/2/diff?from=1", token: "acme", status: 200, check: func(t *testing.T, out map[string]any) {
			add, _ := out["added"].([]any)
			rm, _ := out["removed"].([]any)
			if len(add) != 1 || !strings.HasPrefix(add[0].(string), "hash C ") || len(rm) != 1 || !strings.HasPrefix(rm[0].(string), "hash B ") {
				t.Errorf("%v", out)
			}
		}},
		{name: "diff of a rollback", method: "GET", path: "/api/v1/patterns/main/3/diff?from=1", token: "admin", status: 200, check: func(t *testing.T, out map[string]any) {
			if add, _ := out["added"].([]any); len(add) != 0 {
				t.Errorf("%v", out)
			}
		}},
		{name: "diff needs from", method: "GET", path: "/api/v1/patterns/main/2/diff", token: "admin", status: 400, code: CodeBadRequest, field: "from"},
		{name: "diff of an unknown version", method: "GET", path: "/api/v1/patterns/main/7/diff?from=1", token: "admin", status: 404, code: CodeNotFound},
		{name: "back to latest", method: "PUT", path: "/api/v1/patterns/main/policy?tenant=acme", token: "admin", body: `{"mode":"latest"}`, status: 200, check: func(t *testing.T, out map[string]any) {
			if out["mode"] != "latest" || out["target"] != 3.0 {
				t.Errorf("%v", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := do(tt.method, tt.path, tok[tt.token], tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, out)
			}
			if tt.code != "" && (out["code"] != tt.code || (tt.field != "" && out["field"] != tt.field)) {
				t.Errorf("problem %v, want code %s field %s", out, tt.code, tt.field)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}
