/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`): where a service spent its busy time, by
 * package or Node.js subsystem and by function. `npm run bench -- --profile` profiles the
 * services and prints these for the runs that miss a target.
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  startTime: number;
  endTime: number;
}

/** What a frame belongs to: an npm package, a Node.js subsystem, the app itself, or V8's own work. */
function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native ${functionName || '(anonymous)'}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) {
    const mod = url.slice(5).split('/').slice(0, 2).join('/');
    return `node:${mod.replace(/^internal\//, '')}`;
  }
  const src = /(srcs\/[^/]+|packages\/[^/]+)\//.exec(url);
  return src ? (src[1] as string) : path.basename(url);
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleShare: number;
  areas: Array<[string, number]>;
  functions: Array<[string, number]>;
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const totalHits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0) || 1;
  const msPerHit = (profile.endTime - profile.startTime) / 1000 / totalHits;
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const a = area(node.callFrame);
    if (a === '(idle)') {
      idle += hits;
      continue;
    }
    byArea.set(a, (byArea.get(a) ?? 0) + hits);
    const where = node.callFrame.url ? ` ${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : '';
    const fn = `${node.callFrame.functionName || '(anonymous)'}${where} [${a}]`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
  }
  const busy = totalHits - idle;
  const share = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]): [string, number] => [k, v / (busy || 1)]);
  return { file, busyMs: busy * msPerHit, idleShare: idle / totalHits, areas: share(byArea), functions: share(byFunction) };
}

export function formatSummary(label: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  return [
    `${label}: ${(s.busyMs / 1000).toFixed(1)} s busy, ${(s.idleShare * 100).toFixed(0)}% idle (${s.file})`,
    '  busy time by area:',
    ...s.areas.map(([name, x]) => `    ${pct(x)}  ${name}`),
    '  busiest functions (self time):',
    ...s.functions.map(([name, x]) => `    ${pct(x)}  ${name}`),
  ].join('\n');
}

/** The newest .cpuprofile in `dir`, if any. */
export function newestProfile(dir: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return files[0];
}
