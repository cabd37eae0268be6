import type { Row } from './report';
import type { Service, Stack } from './stack';

export interface Settings {
  mode: 'full' | 'quick';
  movies: number;
  orders: number;
  /** Concurrent connections (HTTP) or loops (bare ceilings), the same for both sides of a pair. */
  connections: number;
  durationS: number;
  warmupS: number;
  profile: boolean;
  /** Sections to run (--only); every one by default. */
  only: string[];
}

/** What every section of the benchmark shares. */
export interface BenchContext {
  settings: Settings;
  stack: Stack;
  inventory: Service;
  gateway: Service;
  rows: Row[];
  notes: string[];
  log: (line: string) => void;
  /** Results other sections refer to (e.g. the direct GET rate the gateway is compared with). */
  results: Record<string, number>;
}

/** A row for a figure that could not be measured, saying why. */
export function unavailable(figure: string, why: string): Row {
  return { figure, value: `n/a (${why})`, ceiling: '', ratio: '', target: '' };
}
