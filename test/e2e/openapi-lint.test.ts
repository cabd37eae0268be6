import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location?: Array<{ pointer?: string }> }>;
}

/**
 * `npx @redocly/cli lint openapi.yaml` with the repository's redocly.yaml (recommended rules),
 * as a test so that it counts in the totals. Redocly CLI is a devDependency: nothing is fetched.
 */
describe('openapi.yaml lint (Redocly CLI)', function () {
  this.timeout(60_000);

  it('has no error and no warning', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        path.join(ROOT, 'node_modules', '.bin', 'redocly'),
        ['lint', 'openapi.yaml', '--format=json'],
        {
          cwd: ROOT,
          // No usage report and no "new version" check: the test machines are offline.
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
          timeout: 50_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, out, errOut) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout: out, stderr: errOut }),
      );
    });
    let report: LintReport;
    try {
      report = JSON.parse(stdout) as LintReport;
    } catch {
      assert.fail(`redocly lint exited ${code} without a JSON report:\n${stdout}\n${stderr}`);
    }
    const problems = report.problems
      .map((p) => `${p.severity} ${p.ruleId} at ${p.location?.[0]?.pointer ?? '?'}: ${p.message}`)
      .join('\n');
    assert.equal(report.totals.errors, 0, problems);
    assert.equal(report.totals.warnings, 0, problems);
    assert.equal(code, 0, stderr);
  });
});
