package correlate

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

//go:embed rules/*.yml
var builtinFiles embed.FS

// Builtin returns Mamori's own rules: YAML files at the root of the FS, each
// holding the detection rule(s) for the sigma package and the correlation
// rule(s) for this one. Per-tenant enablement is the caller's business.
func Builtin() fs.FS {
	sub, err := fs.Sub(builtinFiles, "rules")
	if err != nil {
		panic(err) // "rules" is a valid literal path
	}
	return sub
}

// BuiltinRules parses the correlation documents of Builtin; paths in rules
// and errors are "builtin/<file>".
func BuiltinRules() ([]*Rule, error) {
	fsys := Builtin()
	files, err := fs.Glob(fsys, "*.yml")
	if err != nil {
		return nil, fmt.Errorf("builtin correlation rules: %w", err)
	}
	var rules []*Rule
	var errs []error
	for _, name := range files {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rs, es := ParseAll("builtin/"+name, body)
		rules = append(rules, rs...)
		errs = append(errs, es...)
	}
	return rules, errors.Join(errs...)
}
