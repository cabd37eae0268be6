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
  /** Microseconds from the previous sample to each sample. */
  timeDeltas?: number[];
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

/**
 * `skipMs`: samples from the first milliseconds of the profile (the process starting: loading
 * modules, connecting) are left out, so the summary is about the load that followed.
 */
export function summarizeProfile(file: string, top = 12, skipMs = 0): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  // Hits per node counted from the samples after skipMs (every node's hitCount without them).
  const hitsOf = new Map<number, number>();
  if (profile.samples && profile.timeDeltas && profile.samples.length === profile.timeDeltas.length) {
    let t = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i] as number;
      if (t < skipMs * 1000) continue;
      const id = profile.samples[i] as number;
      hitsOf.set(id, (hitsOf.get(id) ?? 0) + 1);
    }
  } else {
    for (const node of profile.nodes) hitsOf.set(node.id, node.hitCount ?? 0);
  }
  const totalHits = [...hitsOf.values()].reduce((sum, n) => sum + n, 0) || 1;
  const spanUs = profile.endTime - profile.startTime - Math.min(skipMs * 1000, profile.endTime - profile.startTime);
  const msPerHit = spanUs / 1000 / totalHits;
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = hitsOf.get(node.id) ?? 0;
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

/** `per`: how many requests (or orders) the profiled load served, for the busy time each took. */
export function formatSummary(label: string, s: ProfileSummary, per?: { count: number; unit: string }): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  const each = per && per.count > 0 ? `, ${Math.round((s.busyMs * 1000) / per.count)} us busy per ${per.unit}` : '';
  return [
    `${label}: ${(s.busyMs / 1000).toFixed(1)} s busy${each}, ${(s.idleShare * 100).toFixed(0)}% idle (${path.basename(s.file)})`,
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
