#!/usr/bin/env bash
# Installs npm @bytecodealliance/jco (pinned) into $UWSGI_RED_CACHE/jco; its
# node_modules also hold @bytecodealliance/preview2-shim, which the
# transpiled component imports for its WASI imports.
#   jco.sh          install when missing, print the jco CLI path
#   jco.sh --path   print the path only
set -euo pipefail
VERSION=1.35.0
dir="${UWSGI_RED_CACHE:-$HOME/.cache/uwsgi-red}/jco"
bin="$dir/node_modules/.bin/jco"
if [ "${1:-}" = "--path" ]; then echo "$bin"; exit 0; fi
stamp="$dir/.version"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then echo "$bin"; exit 0; fi
command -v npm >/dev/null || { echo "npm not found: apt-get install nodejs npm (Node >= 20)" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"uwsgi-red-jco","private":true}' >"$dir/package.json"
echo "npm install @bytecodealliance/jco@$VERSION into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@bytecodealliance/jco@$VERSION" >&2
echo "$VERSION" >"$stamp"
echo "$bin"
