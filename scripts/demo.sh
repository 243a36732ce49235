#!/usr/bin/env bash
# README command one: a throwaway khd server on loopback, the hello_nsml dataset, a real session
# of examples/hello_nsml, its logs streamed to the end; then everything is stopped and removed.
set -euo pipefail
cd "$(dirname "$0")/.."
khd() { node bin/khd.js "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/khd-demo.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export KHD_CONFIG_DIR="$work/config" KHD_NO_KEYRING=1
export KHD_ADMIN_PASSWORD="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

echo "== khd server (data dir $work/data)" >&2
# The server refuses to run sessions unsandboxed unless told to: the demo says so and goes on.
sandbox_flag=
if ! command -v bwrap >/dev/null 2>&1; then
  echo "== bubblewrap is not installed (apt-get install bubblewrap): the demo runs sessions with --no-sandbox" >&2
  sandbox_flag=--no-sandbox
fi
node bin/khd.js server --port 0 --data-dir "$work/data" $sandbox_flag >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
cat "$work/server.err" >&2
echo "   $url" >&2

echo "== khd login" >&2
printf '%s' "$KHD_ADMIN_PASSWORD" | khd login --server "$url" -u admin --password-stdin

echo "== khd dataset push hello_nsml" >&2
khd dataset push hello_nsml examples/hello_nsml/dataset -m 'NSML hello example: two words'
khd dataset ls

echo "== khd run -d hello_nsml -i   (in examples/hello_nsml)" >&2
(cd examples/hello_nsml && node ../../bin/khd.js run -d hello_nsml -i -m 'the demo')

echo "== khd ps -a" >&2
khd ps -a

echo "== the medical example: examples/breast_cancer (WDBC, 569 real cases)" >&2
python3 examples/breast_cancer/prepare_dataset.py "$work/breast_cancer" >&2
khd dataset push breast_cancer "$work/breast_cancer" --leaderboard --metric custom -m 'WDBC, scored the KHD2020 Track B way'

echo "== khd run -d breast_cancer -i   (in examples/breast_cancer)" >&2
(cd examples/breast_cancer && node ../../bin/khd.js run -d breast_cancer -i) | tee "$work/run.out"
session=$(sed -n 's/^Session \(.*\) is started$/\1/p' "$work/run.out")

echo "== khd model ls $session" >&2
khd model ls "$session" | sed -n '1p;/^best /p;/^30 /p'

echo "== khd submit -t $session best   (public sample, does not count)" >&2
khd submit -t "$session" best

echo "== khd submit $session best   (hidden test set, counted)" >&2
khd submit "$session" best

echo "== khd dataset board breast_cancer" >&2
khd dataset board breast_cancer

# The same server serves the dashboard; KHD_DEMO_KEEP=1 keeps it running to look at.
if [ "${KHD_DEMO_KEEP:-}" = 1 ]; then
  echo "== the dashboard: $url  (user admin, password $KHD_ADMIN_PASSWORD); Ctrl-C stops the server" >&2
  wait "$server_pid" || true
else
  echo "== the dashboard was at $url: run KHD_DEMO_KEEP=1 npm run demo to keep the server up and look" >&2
fi
