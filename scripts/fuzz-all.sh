#!/usr/bin/env bash
# Runs every fuzz target for the given time each (default 1m): make fuzz FUZZTIME=10m
set -euo pipefail
t=${1:-1m}
grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u | while read -r dir; do
  for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
    echo "== $dir $f ($t)"
    go test "./$dir" -run '^$' -fuzz "^$f\$" -fuzztime "$t"
  done
done
