import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Row {
  figure: string;
  /** Measured value, formatted with its unit; 'n/a (...)' when it could not be measured. */
  value: string;
  /** What it is compared with, formatted ('' for none). */
  ceiling: string;
  /** value / ceiling (or ceiling / value for latencies), '' for none. */
  ratio: string;
  /** The issue's target and whether it is met, '' for none. */
  target: string;
  /** Raw numbers for the JSON file. */
  raw?: Record<string, number | string | undefined>;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  node: string;
  postgres: string;
  rabbitmq: string;
  /** /proc/loadavg when the run started and when it ended: other work on the machine skews every figure. */
  loadAverage: { start: string; end: string };
}

export function loadAverage(): string {
  return os.loadavg().map((n) => n.toFixed(2)).join(' ');
}

export function machine(postgres: string, rabbitmq: string, loadAtStart: string): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    rabbitmq,
    loadAverage: { start: loadAtStart, end: loadAverage() },
  };
}

export const fmt = {
  rate: (n: number, unit: string) => `${Math.round(n).toLocaleString('en')} ${unit}`,
  ms: (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`,
  s: (n: number) => `${n.toFixed(1)} s`,
  mb: (n: number) => `${Math.round(n)} MB`,
  ratio: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : ''),
  check: (ok: boolean, text: string) => `${text} ${ok ? 'met' : 'MISSED'}`,
};

const COLUMNS: Array<[keyof Row, string]> = [
  ['figure', 'figure'],
  ['value', 'value'],
  ['ceiling', 'ceiling'],
  ['ratio', 'ratio'],
  ['target', 'target'],
];

/** A plain-text table for the terminal. */
export function textTable(rows: Row[]): string {
  const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...rows.map((r) => String(r[key]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(COLUMNS.map(([, t]) => t)), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(COLUMNS.map(([k]) => String(r[k]))))].join(
    '\n',
  );
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${COLUMNS.map(([, t]) => t).join(' | ')} |`,
    `|${COLUMNS.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${COLUMNS.map(([k]) => esc(String(r[k]))).join(' | ')} |`),
  ].join('\n');
}

export interface Report {
  date: string;
  mode: string;
  durationS: number;
  settings: Record<string, number | string>;
  machine: Machine;
  rows: Row[];
  notes: string[];
  /** CPU profile summaries (with --profile). */
  profiles: string[];
}

/** Writes `<name>.md` and `<name>.json` into `dir`; returns the markdown path. */
export function writeReport(dir: string, name: string, report: Report): string {
  fs.mkdirSync(dir, { recursive: true });
  const m = report.machine;
  const md = [
    `# Benchmark results (${report.mode})`,
    '',
    `Run ${report.date} in ${report.durationS.toFixed(0)} s by \`npm run bench${report.mode === 'quick' ? ' -- --quick' : ''}\`.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, ${m.kernel}; Node.js ${m.node}; ${m.postgres}; RabbitMQ ${m.rabbitmq}.`,
    `Load average (1, 5, 15 min) at the start: ${m.loadAverage.start}; at the end: ${m.loadAverage.end}.`,
    `Settings: ${Object.entries(report.settings)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toLocaleString('en') : v}`)
      .join(', ')}.`,
    '',
    markdownTable(report.rows),
    '',
    ...(report.notes.length > 0 ? ['Notes:', '', ...report.notes.map((n) => `- ${n}`), ''] : []),
    ...(report.profiles.length > 0 ? ['CPU profiles:', '', '```', ...report.profiles, '```', ''] : []),
  ].join('\n');
  const mdPath = path.join(dir, `${name}.md`);
  fs.writeFileSync(mdPath, md);
  fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  return mdPath;
}
