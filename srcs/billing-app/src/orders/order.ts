/** An order as the worker writes it: the validated body plus the id of the message it came in. */
export interface OrderRecord {
  messageId: string;
  userId: number;
  numberOfItems: number;
  /** Exact decimal, e.g. "180" or "19.99": money never goes through a float. */
  totalAmount: string;
  /** The request id the message came with, kept with a conflict (see recordConflicts). */
  requestId?: string;
}

/** What the message handler needs from storage. */
export interface OrderStore {
  /**
   * Writes every order whose message id is not stored yet, in one statement (one transaction:
   * all or none), and resolves with the message ids of the rows that were new (each once).
   * Orders already stored are skipped, which is what makes a redelivered message harmless.
   */
  insertMany(orders: readonly OrderRecord[]): Promise<string[]>;

  /**
   * Of orders whose message id was already stored, records those that differ from the stored
   * order (a reused Idempotency-Key with another body) and resolves with their positions in
   * `orders`. Absent: such orders count as redeliveries.
   */
  recordConflicts?(orders: readonly OrderRecord[]): Promise<number[]>;
}
