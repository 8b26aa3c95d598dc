#!/bin/sh
# Rebuild the committed front-end assets (CodeMirror editor bundle, vendored htmx) from the
# exact versions in package-lock.json. Needs Node 20+ and the npm registry; nothing else in
# Nurture (pip install, the tests, CI) needs Node. Commit the files it changes.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node build.mjs
