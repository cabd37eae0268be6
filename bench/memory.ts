import fs from 'node:fs';

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM), or undefined when the process is gone. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resets the peak RSS (VmHWM) of a process to its current RSS, so a later VmHWM is the peak of
 * what happens in between (Linux clear_refs, value 5). Returns false where that is not allowed.
 */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS of some processes every `intervalMs` until stopped; keeps the largest. */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: number[],
    intervalMs = 25,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const rss = statusKb(pid, 'VmRSS');
      if (rss !== undefined) this.peaks.set(pid, Math.max(rss, this.peaks.get(pid) ?? 0));
    }
  }

  /** Stops; the peak of each process in MB: VmHWM when it was reset at the start, else the sampled peak. */
  stop(hwmValid: boolean): Map<number, number> {
    clearInterval(this.timer);
    this.sample();
    const out = new Map<number, number>();
    for (const pid of this.pids) {
      const hwm = hwmValid ? statusKb(pid, 'VmHWM') : undefined;
      out.set(pid, Math.max(hwm ?? 0, this.peaks.get(pid) ?? 0) / 1024);
    }
    return out;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU time a process has used in user and in kernel (system) mode, in seconds; undefined when it is gone. */
export function processCpu(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used, in seconds; undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const cpu = processCpu(pid);
  return cpu && cpu.user + cpu.system;
}

/** Busy and total CPU seconds of the whole machine since boot, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

export interface CpuUse {
  /** CPU seconds per named group of processes. */
  groups: Record<string, number>;
  /** The same split into user and system (kernel) seconds: system time is mostly socket and pipe I/O. */
  system?: Record<string, number>;
  /** CPU seconds used by anything on the machine, and available (cores x wall time). */
  machineBusy: number;
  machineTotal: number;
}

/**
 * Measures the CPU time groups of processes use between construction and stop(), e.g. the
 * gateway, the inventory, PostgreSQL's backends and the load generator, with the whole machine's
 * busy time for comparison (whatever else runs shows up as the difference).
 */
export class CpuMeter {
  private readonly start = new Map<number, { user: number; system: number }>();
  private readonly machineStart = machineCpu();

  constructor(private readonly groups: Record<string, () => number[]>) {
    for (const pids of Object.values(groups)) {
      for (const pid of pids()) {
        const cpu = processCpu(pid);
        if (cpu !== undefined) this.start.set(pid, cpu);
      }
    }
  }

  stop(): CpuUse {
    const machine = machineCpu();
    const groups: Record<string, number> = {};
    const system: Record<string, number> = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      let user = 0;
      let sys = 0;
      for (const pid of pids()) {
        const end = processCpu(pid);
        if (end === undefined) continue;
        // A process that appeared meanwhile counts from zero.
        const start = this.start.get(pid) ?? { user: 0, system: 0 };
        user += end.user - start.user;
        sys += end.system - start.system;
      }
      groups[name] = user + sys;
      system[name] = sys;
    }
    return { groups, system, machineBusy: machine.busy - this.machineStart.busy, machineTotal: machine.total - this.machineStart.total };
  }
}

/** "gateway 210 us (user 150, system 60), inventory 330 us (...), ... per request; machine 95% busy". */
export function describeCpu(use: CpuUse, requests: number): string {
  const us = (s: number) => Math.round((s * 1e6) / Math.max(1, requests));
  const per = (s: number) => `${us(s)} us`;
  const known = Object.values(use.groups).reduce((a, b) => a + b, 0);
  const parts = Object.entries(use.groups).map(([name, s]) => {
    const sys = use.system?.[name];
    return sys === undefined ? `${name} ${per(s)}` : `${name} ${per(s)} (user ${us(s - sys)}, system ${us(sys)})`;
  });
  parts.push(`everything else ${per(Math.max(0, use.machineBusy - known))}`);
  return `${parts.join(', ')} of CPU per request; machine ${Math.round((100 * use.machineBusy) / Math.max(use.machineTotal, 1e-9))}% busy`;
}
