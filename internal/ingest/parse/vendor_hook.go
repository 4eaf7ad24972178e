package parse

import "github.com/mamori-soc/mamori/internal/ingest/parse/vendor"

// vendorParse is the hook to the vendor line parsers (package vendor):
// given the syslog APP-NAME/TAG ("" when none) and the message body, it
// returns the format name and true when a parser matched. It is a variable
// so tests can pin this package's own behaviour independently of the
// vendor parsers.
var vendorParse = vendor.Parse
