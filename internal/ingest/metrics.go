package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest counters, registered once per server.
type Metrics struct {
	Events       *prometheus.CounterVec // tenant, source, result
	FrameErrors  *prometheus.CounterVec // source, reason
	UDPDrops     prometheus.Counter
	Pending      prometheus.Gauge
	Published    prometheus.Counter
	PublishFails *prometheus.CounterVec // reason
	Rejected     *prometheus.CounterVec // source, reason
	Connections  *prometheus.GaugeVec   // source
	PublishTime  prometheus.Histogram
	// NoTenantLabel collapses the tenant label to "_all" (many tenants).
	NoTenantLabel bool
}

// TenantLabel is the tenant label value for t.
func (m *Metrics) TenantLabel(t string) string {
	if m.NoTenantLabel {
		return "_all"
	}
	return t
}

// NewMetrics creates and registers the ingest metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_ingest_events_total", Help: "Events received, by tenant, source and parse result (parsed, unparsed, invalid_utf8).",
		}, []string{"tenant", "source", "result"}),
		FrameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_ingest_frame_errors_total", Help: "Transport framing errors by source and reason.",
		}, []string{"source", "reason"}),
		UDPDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_ingest_udp_drops_total", Help: "UDP datagrams dropped because the pipeline was full.",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_ingest_pending_events", Help: "Events parsed but not yet durable on the bus (queue depth).",
		}),
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_bus_published_batches_total", Help: "Batches stored on the bus.",
		}),
		PublishFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_bus_publish_failures_total", Help: "Failed publish attempts by reason (full, unavailable); they are retried.",
		}, []string{"reason"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_ingest_rejected_total", Help: "Messages or requests refused, by source and reason.",
		}, []string{"source", "reason"}),
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mamori_ingest_connections", Help: "Open stream connections by source.",
		}, []string{"source"}),
	}
	m.PublishTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "mamori_bus_publish_seconds", Help: "Time for the bus to store one batch (publish to acknowledgement).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	reg.MustRegister(m.PublishTime, m.Events, m.FrameErrors, m.UDPDrops, m.Pending, m.Published, m.PublishFails, m.Rejected, m.Connections)
	return m
}
