/**
 * An unbounded queue a stream takes from in order: what the reader pushes, in
 * the order pushed. Takers wait in line too, so `next()` called again before
 * the last call settled (`Promise.all([s.next(), s.next()])`, a `Promise.race`
 * against a timer) gets the following item instead of stranding the first call.
 */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: IteratorResult<T, undefined>) => void)[] = [];
  private closed = false;

  /** Add an item (dropped once the queue is closed). */
  push(item: T): void {
    if (this.closed) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter({ value: item, done: false });
    else this.items.push(item);
  }

  /** The next item, waiting for one; `done` once closed and drained. */
  next(): Promise<IteratorResult<T, undefined>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiters.push(resolve);
    });
  }

  /** Stop accepting items; every waiting taker sees the end. */
  close(): void {
    this.closed = true;
    this.items.length = 0;
    for (const waiter of this.waiters.splice(0)) waiter({ value: undefined, done: true });
  }
}
