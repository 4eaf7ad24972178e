// Package alert owns alerts: what the detection engine found, kept in the
// state database. It deduplicates (the same rule on the same entity within
// a window updates one alert and its count grows), applies per-tenant and
// per-rule exceptions (a matching exception suppresses an alert without
// deleting the rule: the alert is kept with status "suppressed" and hidden
// by default), answers filtered listings, and fans new and updated alerts
// out to live subscribers (the API's server-sent events stream).
//
// It knows nothing of Sigma, indicators or baselines: the detection engine
// describes each finding as a Finding and the store does the rest.
package alert
