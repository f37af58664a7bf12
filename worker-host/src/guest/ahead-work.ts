/**
 * What a guest thread makes ahead between its messages: memories for its
 * pool, an instance of the module on a free one (memory-pool.ts), and a
 * spare clone of the snapshot it served last (instance.ts) — in short steps,
 * each taken only while no message waits (serveMailbox runs them), so that a
 * call that comes meanwhile waits for one step at most instead of all of
 * them. Back to back, a call came while the thread still made its spare for
 * the last one (0.2–0.3 ms here): the way to the thread was that work, not
 * the message (docs/fork.md, "Polling before sleeping").
 *
 * One factory holds the thread's spare (spares cost one instance per
 * thread): the one served last. When another is served, the old holder's
 * spare is dropped at once, not as a step, so that no spare of a snapshot
 * served before the last is ever found by its next call.
 */
import type { CloneFactory } from './instance.js';
import type { MemoryPool } from './memory-pool.js';
import type { IdleWork } from './thread-mailbox.js';

export class AheadWork implements IdleWork {
  private holder: CloneFactory | undefined;
  /** The next step; past the last, nothing is left to make. */
  private next = Infinity;
  /**
   * In order: an instance of the module on a free memory (any snapshot of
   * the module takes it: what a fork with nothing made ahead for it needs
   * first; one step only: a second per thread slowed the fleet's forks,
   * whose 32 threads make them on 2 cores right after a snapshot loads);
   * the memories given back, reset (a copy-on-write fork takes one unreset,
   * the others need it); the pool's
   * memories; the instance again, for a memory the refill made; the spare
   * (which takes that instance's memory); then the refill and the instance
   * again for it.
   */
  private readonly steps: ((holder: CloneFactory) => void)[] = [
    (f) => f.instantiateAhead(),
    () => this.pool.settle(),
    () => this.pool.refill(),
    (f) => f.instantiateAhead(),
    (f) => f.prepareSpare(),
    () => this.pool.refill(),
    (f) => f.instantiateAhead(),
  ];

  constructor(private readonly pool: MemoryPool) {}

  /** The thread served (or loaded) `factory` last: it holds the spare from now on, and the steps begin again. */
  served(factory: CloneFactory): void {
    const previous = this.holder;
    this.holder = factory;
    this.next = 0;
    if (previous === factory) return;
    try {
      previous?.dropSpare();
    } catch {
      // A spare whose registration is already gone: nothing is left to free.
    }
  }

  /** `factory` is being closed (its snapshot dropped): nothing more is made for it. */
  forget(factory: CloneFactory): void {
    if (this.holder !== factory) return;
    this.holder = undefined;
    this.next = Infinity;
  }

  /** Takes the next step; false once nothing is left. A step that fails is passed over: the next call makes its own. */
  step(): boolean {
    const holder = this.holder;
    if (!holder || this.next >= this.steps.length) return false;
    const step = this.steps[this.next++];
    try {
      step(holder);
    } catch {
      // No spare or instance ahead then (out of memory, say): the next call makes its own instance and reports what fails.
    }
    return this.next < this.steps.length;
  }
}
