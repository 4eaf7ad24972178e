//go:build !yara || !cgo

package yara

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStubNotBuilt(t *testing.T) {
	if Built {
		t.Fatal("Built is true without the yara tag")
	}
	_, _, err := Compile(context.Background(), []string{"x.yar"}, Options{})
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "-tags yara") {
		t.Fatalf("Compile: %v, want ErrNotBuilt naming -tags yara", err)
	}
	var r *Rules
	if _, err := r.ScanFile(context.Background(), "x"); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("ScanFile: %v", err)
	}
	if _, err := r.ScanBytes(context.Background(), "x", nil); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("ScanBytes: %v", err)
	}
}
