/**
 * Root hooks (loaded through .mocharc.json `require`): a test whose responses broke openapi.yaml
 * fails even when the violation did not reach its assertions, e.g. because it caught the error.
 * A violation that reached the test has failed it already; see test/support/contract.ts.
 */
import type { Context } from 'mocha';
import { takeViolations } from './contract';

export const mochaHooks = {
  afterEach(this: Context): void {
    const violations = takeViolations();
    if (violations.length === 0 || this.currentTest?.state !== 'passed') return;
    throw new Error(
      `"${this.currentTest.fullTitle()}" passed, but ${violations.length} response(s) broke openapi.yaml:\n` +
        violations.map((v) => v.message).join('\n'),
    );
  },
};
