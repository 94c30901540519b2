#!/usr/bin/env bash
# Debian packages that only the test suite needs, as real clients: kubectl (the fake Kubernetes API is
# driven by the real client; `kubectl kustomize` renders deploy/) and headless chromium (dashboard test).
# `make run` needs none of them; `make test` calls this.
set -euo pipefail
need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing ${need[*]} from Debian packages (tests only)"
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
  || echo "warning: could not install ${need[*]}; tests that need them will say so" >&2
