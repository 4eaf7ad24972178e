// Package lab owns the malware lab's sample store: files an agent took out
// of a customer's machine (quarantined detections, uploads ordered by an
// analyst) kept for analysis and for making bandage patterns.
//
// Samples are live malware, so the store never keeps them in a form that
// runs, opens or trips the server's own antivirus: each is encrypted
// (AES-256-GCM with the lab's key, the sample's SHA-256 as additional
// data), named by its SHA-256, read-only, and never executed or parsed
// here. Storage is shared across tenants (the same sample sent by two
// customers is kept once), visibility is not: a tenant sees a sample only
// through its own sightings (which agent, which file name, which
// detection, when).
package lab
