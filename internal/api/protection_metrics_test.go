package api

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

func TestProtectionMetrics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, fl := testState(t, dir)
	repo := testRepo(t, dir)
	rel, err := repo.Publish(ctx, "bandage", update.Records{[]byte("hash A 3395856ce81f2b7382dee72602f798b642f14140:68")}, update.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []string{"acme", "idle"} {
		if _, err := st.AddTenant(ctx, tn, 0); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for range 2 {
		a, _, err := fl.Enroll(ctx, "acme", fleet.Info{Hostname: "pc"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	if err := fl.Report(ids[0], fleet.Install{Channel: "bandage", Version: rel.Version, Status: fleet.StatusActive, At: rel.PublishedAt.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	s := &Server{State: st, Fleet: fl, Releases: repo}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.ProtectionCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"mamori_pattern_agents,channel=bandage,tenant=acme,version=1":                            2,
		"mamori_pattern_agents_active,channel=bandage,tenant=acme,version=1":                     1,
		"mamori_pattern_agents_failed,channel=bandage,tenant=acme,version=1":                     0,
		"mamori_pattern_time_to_protect_seconds,channel=bandage,share=0.5,tenant=acme,version=1": 3,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Not reached yet: no 99 % or 100 % figure; a tenant without agents: nothing.
	if len(got) != len(want) {
		t.Errorf("series %v", got)
	}
}
