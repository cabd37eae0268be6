'use strict';
/**
 * Mocha reporter: exactly the `spec` output, plus, when TEST_SUMMARY_FILE is set, one JSON line
 * {"passed":N,"failed":N,"pending":N} appended to that file at the end of the run. .ci/run sums
 * these lines (other test steps may append their own) into its final "tests: N passed, N failed".
 */
const fs = require('node:fs');
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const file = process.env.TEST_SUMMARY_FILE;
    if (!file) return;
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats || this.stats;
      const line = {
        passed: stats.passes,
        failed: stats.failures,
        pending: stats.pending,
      };
      fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
    });
  }
}

SpecWithSummary.description = 'spec, plus a JSON summary line appended to $TEST_SUMMARY_FILE';

module.exports = SpecWithSummary;
