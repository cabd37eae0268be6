/**
 * Every PostgresInstance / RabbitInstance created in this test process, until destroyed.
 * mochaGlobalTeardown destroys what is left, so a suite whose `after` hook failed (or that forgot
 * one) still leaves nothing running.
 */
export interface Destroyable {
  readonly name: string;
  destroy(): Promise<void>;
}

const instances = new Set<Destroyable>();

export function registerInstance(instance: Destroyable): void {
  instances.add(instance);
}

export function unregisterInstance(instance: Destroyable): void {
  instances.delete(instance);
}

/** Destroys every registered instance (in parallel); resolves with the errors that occurred. */
export async function destroyAllInstances(): Promise<Error[]> {
  const results = await Promise.allSettled([...instances].map((i) => i.destroy()));
  instances.clear();
  return results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => (r.reason instanceof Error ? r.reason : new Error(String(r.reason))));
}
