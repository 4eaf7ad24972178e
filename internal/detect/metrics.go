package detect

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the detection engine.
type Metrics struct {
	Events       prometheus.Counter
	Findings     *prometheus.CounterVec // kind
	Alerts       *prometheus.CounterVec // kind, severity: new alerts
	BatchTime    prometheus.Histogram
	Latency      prometheus.Histogram
	Lag          prometheus.Histogram
	RulesLoaded  prometheus.Gauge
	RulesSkipped prometheus.Gauge
	RetroHunts   prometheus.Counter
	RetroPending prometheus.Gauge
}

// NewMetrics creates and registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		Events: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamori_detect_events_total", Help: "Events evaluated by the detection engine."}),
		Findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamori_detect_findings_total",
			Help: "Findings (rule matches, correlation firings, indicator hits, baseline surges), before deduplication."}, []string{"kind"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamori_detect_alerts_total",
			Help: "New alerts (after deduplication), by kind and severity."}, []string{"kind", "severity"}),
		BatchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamori_detect_batch_seconds",
			Help: "Time to evaluate one consumer call (several bus batches) and commit its alerts.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamori_detect_alert_latency_seconds",
			Help: "From an event's arrival at Mamori to the finding it caused.", Buckets: lat}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamori_detect_lag_seconds",
			Help: "How far behind ingest the detection consumer runs (per bus batch).", Buckets: lat}),
		RulesLoaded:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamori_detect_rules_loaded", Help: "Rules compiled in the current rule set."}),
		RulesSkipped: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamori_detect_rules_skipped", Help: "Rules skipped at the last load (see GET /api/v1/rules)."}),
		RetroHunts:   prometheus.NewCounter(prometheus.CounterOpts{Name: "mamori_detect_retro_hunts_total", Help: "Indicators retro-hunted in the stored events."}),
		RetroPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamori_detect_retro_pending", Help: "Indicators queued for a retro-hunt."}),
	}
	reg.MustRegister(m.Events, m.Findings, m.Alerts, m.BatchTime, m.Latency, m.Lag, m.RulesLoaded, m.RulesSkipped, m.RetroHunts, m.RetroPending)
	return m
}
