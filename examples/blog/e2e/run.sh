#!/usr/bin/env bash
# Runs the browser test (run.mjs) against a deployed blog: installs playwright-core from the
# lockfile when node_modules is missing or stale, then `node run.mjs "$@"`.
#   bash examples/blog/e2e/run.sh http://blog.localhost:8480 [--screenshot FILE]
# Needs node (18 or later) and Debian's chromium (scripts/host-setup.sh installs both).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
command -v node >/dev/null || { echo "run.sh: node is missing (apt-get install nodejs npm)" >&2; exit 2; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "run.sh: ${CHROMIUM:-/usr/bin/chromium} is missing (apt-get install chromium)" >&2; exit 2; }
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  exec 9>"${TMPDIR:-/tmp}/berth-blog-e2e-npm.lock"
  flock 9
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
  exec 9>&-
fi
exec node run.mjs "$@"
