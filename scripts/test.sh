#!/usr/bin/env bash
# `npm test`: build and typecheck, then every tier (unit, integration, end-to-end) with vitest, the nsml runtime
# with pytest, and one closing line counting both.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results

npm run --silent build >/dev/null || { echo "build failed" >&2; exit 1; }
# Types of everything, the tests and the browser code included (vitest itself does not check them).
npm run --silent typecheck || { echo "typecheck failed" >&2; exit 1; }

npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
vitest_rc=$?

pytest=(python3 -m pytest)
if ! python3 -m pytest --version >/dev/null 2>&1 && /usr/bin/python3 -m pytest --version >/dev/null 2>&1; then
  pytest=(/usr/bin/python3 -m pytest)
fi
"${pytest[@]}" -q -p no:cacheprovider python/tests --junitxml=test-results/pytest.xml
pytest_rc=$?

node scripts/test-summary.mjs test-results/vitest.json test-results/pytest.xml
[ "$vitest_rc" -eq 0 ] && [ "$pytest_rc" -eq 0 ]
