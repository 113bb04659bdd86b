// Prints vitest's totals as one plain line ("N passed, N failed, N skipped") from the JSON
// report, and fails when any test was skipped: CI runs as root, so nothing may skip there.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? 'test-results/vitest.json', 'utf8'));
const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + (report.numTodoTests ?? 0);
console.log(`vitest: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (report.numTotalTests === 0) {
  console.error('test-summary: no test ran');
  process.exit(1);
}
if (skipped > 0 && process.argv.includes('--no-skips')) {
  const names = report.testResults.flatMap((f) =>
    f.assertionResults.filter((a) => a.status === 'pending' || a.status === 'skipped' || a.status === 'todo').map((a) => `${f.name}: ${a.fullName}`),
  );
  console.error(`test-summary: ${skipped} test(s) skipped, which CI does not allow:\n  ${names.slice(0, 20).join('\n  ')}`);
  process.exit(1);
}
process.exit(failed > 0 ? 1 : 0);
