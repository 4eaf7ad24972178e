package api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// protectionCollector exposes time to protect — the figure the SOC sells —
// as metrics: for the latest release of each channel and each tenant, the
// agents, those with it active or refusing it, and the seconds from
// publication until half, 99 % and all of them had it active. Computed at
// scrape time from the fleet's in-memory view.
type protectionCollector struct {
	s                               *Server
	agents, active, failed, seconds *prometheus.Desc
}

// ProtectionCollector returns the collector of s's time to protect.
func (s *Server) ProtectionCollector() prometheus.Collector {
	labels := []string{"channel", "version", "tenant"}
	return &protectionCollector{
		s:       s,
		agents:  prometheus.NewDesc("mamori_pattern_agents", "Enrolled agents of the tenant, for the latest release of the channel.", labels, nil),
		active:  prometheus.NewDesc("mamori_pattern_agents_active", "Agents of the tenant with the channel's latest release active.", labels, nil),
		failed:  prometheus.NewDesc("mamori_pattern_agents_failed", "Agents of the tenant that refused the channel's latest release.", labels, nil),
		seconds: prometheus.NewDesc("mamori_pattern_time_to_protect_seconds", "Seconds from publication of the channel's latest release until this share of the tenant's agents had it active (absent until reached).", append(labels, "share"), nil),
	}
}

func (c *protectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.agents
	ch <- c.active
	ch <- c.failed
	ch <- c.seconds
}

func (c *protectionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	if s.Fleet == nil || s.Releases == nil || s.State == nil {
		return
	}
	for _, channel := range Channels {
		rels := s.Releases.Releases(channel)
		if len(rels) == 0 {
			continue
		}
		rel := rels[len(rels)-1]
		v := strconv.FormatUint(rel.Version, 10)
		for _, t := range s.State.Tenants() {
			p := s.Fleet.Protection(t.Name, channel, rel.Version, rel.PublishedAt)
			if p.Agents == 0 {
				continue
			}
			lv := []string{channel, v, t.Name}
			ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(p.Agents), lv...)
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(p.Active), lv...)
			ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(p.Failed), lv...)
			for share, sec := range map[string]*float64{"0.5": p.P50, "0.99": p.P99, "1": p.All} {
				if sec != nil {
					ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.GaugeValue, *sec, append(lv, share)...)
				}
			}
		}
	}
}
