#!/usr/bin/env bash
# Checks a file that came from ../shared/hosts against the sha256 committed
# in shared.sha256 (sha256sum format, paths relative to hosts/), before it is
# used: a replaced or corrupted binary stops the build with a message
# instead of running in the tests, the demo or the bench.
#   verify-shared.sh FILE NAME   NAME: the path in shared.sha256 (e.g. nginx-wasm/bin/nginx)
set -euo pipefail
file="$1" name="$2"
sums="$(dirname "${BASH_SOURCE[0]}")/shared.sha256"
want="$(awk -v n="$name" '$2 == n { print $1 }' "$sums")"
[ -n "$want" ] || { echo "no sha256 for $name in $sums" >&2; exit 1; }
have="$(sha256sum "$file" | cut -d' ' -f1)"
if [ "$have" != "$want" ]; then
  cat >&2 <<MSG
sha256 mismatch for $file (shared hosts/$name):
  expected $want (scripts/shared.sha256)
  got      $have
Refusing to use it. If the shared host was rebuilt on purpose, review it and
commit its new digest to scripts/shared.sha256.
MSG
  exit 1
fi
