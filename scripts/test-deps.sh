#!/usr/bin/env bash
# Installs what the tests drive for real, quietly and idempotently:
# util-linux logger, rsyslog (+ RELP, GnuTLS and OpenSSL stream drivers), openssl.
# VictoriaLogs and nats-server binaries are built from the Go module proxy by the
# tests themselves into $MAMORI_TEST_CACHE.
set -euo pipefail
need=()
command -v logger >/dev/null 2>&1 || need+=(bsdutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
for pkg in rsyslog-relp rsyslog-gnutls rsyslog-openssl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts a system rsyslogd; tests run their own, so stop it.
  ($SUDO systemctl stop rsyslog 2>/dev/null || $SUDO service rsyslog stop 2>/dev/null || true) >/dev/null 2>&1
fi
mkdir -p "${MAMORI_TEST_CACHE:-$HOME/.cache/mamori-test}"
# internal/agent/isolate builds network namespaces and veth pairs with ip(8).
if ! command -v ip >/dev/null 2>&1; then
  echo "test-deps: installing iproute2"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi
