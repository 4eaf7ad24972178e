# Mamori — `make test` is the one command that sets up and runs every test.
GO      ?= go
PKGS    ?= ./...
# Tests that need a real dependency fail (instead of skipping) when it is
# missing: scripts/test-deps.sh installs them first.
export MAMORI_REQUIRE_ALL ?= 1
export MAMORI_TEST_CACHE  ?= $(HOME)/.cache/mamori-test

.PHONY: test test-deps build vet fuzz bench

build:
	$(GO) build -o bin/mamori ./cmd/mamori

test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) test -count=1 -timeout 20m -tags yara ./internal/pattern/yara/ ./cmd/...

test-deps:
	@bash scripts/test-deps.sh

# Long fuzzing by hand: make fuzz FUZZTIME=10m
FUZZTIME ?= 1m
fuzz:
	@bash scripts/fuzz-all.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
