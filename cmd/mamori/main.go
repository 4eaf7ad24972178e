// Command mamori is the Mamori SOC platform: `mamori serve` runs the
// server, the other commands are the CLI over its HTTP API.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mamori-soc/mamori/internal/client"
	"github.com/mamori-soc/mamori/internal/config"
)

// Exit codes (docs: CONVENTIONS): 0 ok, 1 condition false/found, 2 usage or
// input error, 3 server unreachable or refused.
const (
	exitOK          = 0
	exitFound       = 1
	exitUsage       = 2
	exitUnreachable = 3
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := newRoot()
	err := root.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	code := exitUsage
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.Is(err, client.ErrUnreachable), errors.Is(err, client.ErrRefused):
		code = exitUnreachable
	case errors.Is(err, config.ErrInvalid):
		code = exitUsage
	}
	if !(errors.As(err, &ee) && ee.err == nil) {
		fmt.Fprintln(os.Stderr, "mamori:", err)
	}
	os.Exit(code)
}
