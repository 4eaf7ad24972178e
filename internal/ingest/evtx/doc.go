// Package evtx reads Windows .evtx event log files (with
// www.velocidex.com/golang/evtx) and turns each record into a flat map with
// ECS / Winlogbeat dotted keys (winlog.*, event.code, host.name,
// @timestamp). The maps are JSON-ready: marshalled to one JSON object per
// record they pass through internal/ingest/parse unchanged (format
// "winlog").
//
// It owns only the decoding of the file format; sending the records on is
// the caller's job.
package evtx
