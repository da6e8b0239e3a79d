#!/usr/bin/env bash
# Headless browser for the stats viewer's end-to-end test: Debian's chromium
# (never a browser downloaded by Playwright) and playwright-core from npm,
# pinned by plugins/stats-viewer/package-lock.json, into that folder's
# node_modules. Idempotent and fast when both are present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PLUGIN="$ROOT/plugins/stats-viewer"

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian chromium" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

command -v node >/dev/null || { echo "node not found: install Node.js >= 20 (apt-get install nodejs npm)" >&2; exit 1; }
want="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/playwright-core"].version)' "$PLUGIN/package-lock.json")"
have="$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
  "$PLUGIN/node_modules/playwright-core/package.json")"
if [ "$want" != "$have" ]; then
  echo "npm ci playwright-core@$want in $PLUGIN" >&2
  # No browser download: the test drives /usr/bin/chromium.
  (cd "$PLUGIN" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
fi
