/** Something that waits until a deadline at most. */
export interface Deadlined {
  /** When it is given up (Date.now() milliseconds). */
  readonly deadline: number;
  /** True once it settled otherwise; then it is no longer watched. */
  readonly settled: boolean;
  /** Its deadline passed first: give it up. */
  expire(): void;
}

/**
 * The deadlines of everything in flight, kept by one timer. Every entry waits equally long from
 * when it is added, so deadlines come in the order entries are added, and only the oldest
 * unsettled one needs watching: a settled head is dropped as soon as `settle` is called, and
 * the timer, when it fires, gives up every head whose deadline has passed and waits for the next.
 * An entry's deadline may pass a little late when one added before it has a later deadline. The
 * gateway keeps the confirm deadlines of its orders (billing/publisher.ts) and the body deadlines
 * of the orders the front door takes (billing/order-door.ts) this way: a timer and a promise race
 * per order cost more than the rest of its publish.
 */
export class DeadlineQueue<T extends Deadlined> {
  private entries: T[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  add(entry: T): void {
    this.entries.push(entry);
    this.timer ??= setTimeout(this.fire, Math.max(0, entry.deadline - Date.now()));
  }

  /** Call once an entry settled: drops the settled entries at the head. */
  settle(): void {
    const entries = this.entries;
    while (this.head < entries.length && (entries[this.head] as T).settled) this.head++;
    if (this.head === entries.length) {
      entries.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= entries.length) {
      this.entries = entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Entries not settled yet (some may be settled out of order behind the head). */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** Stops the timer (the entries left are settled by whoever owns them). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = Date.now();
    const entries = this.entries;
    while (this.head < entries.length) {
      const entry = entries[this.head] as T;
      if (!entry.settled) {
        if (entry.deadline > now) break;
        entry.expire();
      }
      this.head++;
    }
    this.settle();
    if (this.head < this.entries.length) this.timer = setTimeout(this.fire, Math.max(0, (this.entries[this.head] as T).deadline - now));
  };
}
