/** An unbounded queue one consumer awaits: what the reader pushes, a stream takes in order. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private waiter: ((item: IteratorResult<T, undefined>) => void) | undefined;
  private closed = false;

  /** Add an item (dropped once the queue is closed). */
  push(item: T): void {
    if (this.closed) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  /** The next item, waiting for one; `done` once closed and drained. */
  next(): Promise<IteratorResult<T, undefined>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Stop accepting items; a waiting consumer sees the end. */
  close(): void {
    this.closed = true;
    this.items.length = 0;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }
}
