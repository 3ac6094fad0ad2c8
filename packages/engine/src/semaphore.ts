import { CancelledError } from '@nabla-build/model';

/**
 * Limits how many steps run at once. A free place goes to the waiting step of the highest priority (the
 * earliest of equals); while a hold is open (hold()), none is given out, so that steps still on their way
 * (reading their cache entries) queue up before the first places are taken.
 */
export class Semaphore {
  private active = 0;
  private held = 0;
  private readonly waiting: { priority: number; wake: () => void; fail: () => void }[] = [];
  /** Waiting steps fail with CancelledError once `signal` aborts (one listener, however many wait). */
  constructor(
    private readonly size: number,
    private readonly signal?: AbortSignal,
  ) {
    signal?.addEventListener('abort', () => {
      for (const w of this.waiting.splice(0)) w.fail();
    });
  }

  hold(): () => void {
    this.held++;
    return once(() => {
      this.held--;
      this.dispatch();
    });
  }

  async acquire(priority = 0): Promise<() => void> {
    await new Promise<void>((resolve, reject) => {
      if (this.signal?.aborted) return reject(new CancelledError());
      const w = { priority, wake: resolve, fail: () => reject(new CancelledError()) };
      const at = this.waiting.findIndex((o) => o.priority < priority);
      this.waiting.splice(at < 0 ? this.waiting.length : at, 0, w);
      this.dispatch();
    });
    return once(() => {
      this.active--;
      this.dispatch();
    });
  }

  /**
   * Places are given out on the next turn of the event loop: a step that ends a hold may open the next one
   * (its deps' cache entries), and the dependents of a step that ends queue up, in the same turn.
   */
  private dispatch(): void {
    setImmediate(() => {
      while (this.held === 0 && this.active < this.size && this.waiting.length > 0) {
        this.active++;
        this.waiting.shift()?.wake();
      }
    });
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) f();
    done = true;
  };
}
