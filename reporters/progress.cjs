'use strict';
// A reporter for Vitest and Jest that appends one JSON line per finished test to the file named by
// BRANCHING_PROGRESS_FILE, in the shape of a Jest report's assertionResults (plus the file). The
// suite tools read it when a run is killed before its JSON report is written: the tests it had
// finished still count. Plain CommonJS on purpose: each framework loads it by path, in its own
// process (Jest requires it, Vitest imports it), and both then see the class itself.
const { appendFileSync } = require('node:fs');

function write(line) {
  const file = process.env.BRANCHING_PROGRESS_FILE;
  if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
}

function vitestLine(testCase) {
  const ancestorTitles = [];
  for (let p = testCase.parent; p && p.type === 'suite'; p = p.parent) ancestorTitles.unshift(String(p.name));
  const result = testCase.result();
  return {
    file: testCase.module.moduleId,
    ancestorTitles,
    title: testCase.name,
    status: result.state,
    failureMessages: (result.errors || []).map((e) => e.stack || e.message || String(e)),
  };
}

class ProgressReporter {
  /** Vitest calls it with the test case; Jest with the test (its file) and the test case's result. */
  onTestCaseResult(test, result) {
    if (result === undefined) return write(vitestLine(test));
    write({
      file: test.path,
      ancestorTitles: result.ancestorTitles,
      title: result.title,
      status: result.status,
      failureMessages: result.failureMessages || [],
    });
  }
}

module.exports = ProgressReporter;
module.exports.default = ProgressReporter;
