import type { LoadProfile } from './profile';
import type { Row } from './cases';

/** Whether a row fails the run: a broken limit, unless it is a time limit the profile only reports. */
export function rowFails(row: Row, profile: LoadProfile): boolean {
  return row.held === false && (profile.enforceTiming || !row.timing);
}

function verdict(row: Row, profile: LoadProfile): string {
  if (row.held === undefined) return '';
  if (row.held) return 'held';
  return rowFails(row, profile) ? 'FAILED' : 'missed (reported only in the short profile)';
}

/** The results as one Markdown table: figure, value, limit, held/failed. */
export function renderTable(rows: Row[], profile: LoadProfile): string {
  const escape = (s: string) => s.replace(/\|/g, '\\|');
  const lines = ['| figure | value | limit | held/failed |', '|---|---|---|---|'];
  for (const row of rows) lines.push(`| ${escape(row.figure)} | ${escape(row.value)} | ${escape(row.limit)} | ${verdict(row, profile)} |`);
  const failed = rows.filter((r) => rowFails(r, profile)).length;
  lines.push('', `${profile.name} profile: ${rows.length} rows, ${failed} failed`);
  return lines.join('\n');
}
