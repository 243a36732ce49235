#!/usr/bin/env bash
# `npm test`: build and typecheck, then every tier (unit, integration, end-to-end) with vitest, the nsml runtime
# with pytest, and one closing line counting both.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results

# A band of session uids of this run's own (test/helpers/uids.ts): a second `npm test` beside
# this one takes the next slot, and no uid is ever handed to sessions of both.
for slot in 0 1 2 3; do
  lock="/tmp/khd-test-uid-slot-$slot"
  # A slot whose run is gone (its pid file names no process) is free again.
  if mkdir "$lock" 2>/dev/null || { [ -f "$lock/pid" ] && ! kill -0 "$(cat "$lock/pid")" 2>/dev/null && rm -rf "$lock" && mkdir "$lock" 2>/dev/null; }; then
    echo $$ > "$lock/pid"
    trap 'rm -rf "$lock"' EXIT
    export KHD_TEST_UID_SLOT=$slot
    break
  fi
done

npm run --silent build >/dev/null || { echo "build failed" >&2; exit 1; }
# Types of everything, the tests and the browser code included (vitest itself does not check them).
npm run --silent typecheck || { echo "typecheck failed" >&2; exit 1; }

npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
vitest_rc=$?

# The runtime's tests under each Python there is (the one on PATH, and Debian's, whose numpy links
# BLAS through /etc/alternatives and which has python3-torch): the same file may be both.
pytest_rc=0
xmls=()
seen=""
for py in python3 /usr/bin/python3; do
  exe=$("$py" -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || continue
  case " $seen " in *" $exe "*) continue ;; esac
  seen="$seen $exe"
  "$py" -m pytest --version >/dev/null 2>&1 || continue
  xml="test-results/pytest-${#xmls[@]}.xml"
  echo "nsml runtime tests with $exe"
  "$py" -m pytest -q -p no:cacheprovider python/tests --junitxml="$xml" || pytest_rc=1
  xmls+=("$xml")
done
if [ ${#xmls[@]} -eq 0 ]; then
  echo "no python3 with pytest for the nsml runtime's tests: apt-get install python3-pytest" >&2
  pytest_rc=1
fi

node scripts/test-summary.mjs test-results/vitest.json "${xmls[@]}"
[ "$vitest_rc" -eq 0 ] && [ "$pytest_rc" -eq 0 ]
