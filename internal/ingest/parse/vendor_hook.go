package parse

import "github.com/mamori-soc/mamori/internal/event"

// vendorParse is the hook to the vendor line parsers (package
// internal/ingest/parse/vendor, function vendor.Parse). It is a variable so
// this package builds before that package exists; switch it to vendor.Parse
// once it does. app is the syslog APP-NAME/TAG ("" when none) and msg the
// message body; it returns the format name and true when a parser matched.
var vendorParse = func(app, msg string, e *event.Event) (string, bool) { return "", false }
