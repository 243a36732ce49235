// Prints one closing line, `N passed, N failed`, over vitest's JSON report and pytest's JUnit XMLs.
import { readFileSync } from 'node:fs';

const [vitestJson, ...pytestXmls] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const v = JSON.parse(readFileSync(vitestJson, 'utf8'));
  passed += v.numPassedTests;
  // A file that failed with no failing test in it could not run at all (an import error): one failure.
  const broken = v.testResults.filter((f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed'));
  failed += v.numFailedTests + broken.length;
  skipped += v.numPendingTests + v.numTodoTests;
} catch {
  failed += 1;
}
if (pytestXmls.length === 0) failed += 1;
for (const pytestXml of pytestXmls) {
  try {
    const xml = readFileSync(pytestXml, 'utf8');
    const suite = /<testsuite\b[^>]*>/.exec(xml)[0];
    const attr = (name) => Number(new RegExp(`${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
    const bad = attr('failures') + attr('errors');
    passed += attr('tests') - bad - attr('skipped');
    failed += bad;
    skipped += attr('skipped');
  } catch {
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
