#!/usr/bin/env bash
# Installs what host-tests/test_oci.py needs: a real OCI/Docker registry
# (Debian docker-registry, run by the test on a loopback port) and skopeo
# (pushes dist/oci/* layouts). Idempotent: a no-op when both are there.
# RUNLEVEL=1 keeps invoke-rc.d from starting the packaged registry service,
# which would listen on every interface; the test starts its own.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
((${#missing[@]})) || exit 0
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
echo "apt-get install ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
