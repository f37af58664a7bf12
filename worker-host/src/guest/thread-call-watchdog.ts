/**
 * The time limit of the calls that call threads read from their own
 * connections (thread-channel.ts), kept by the pool's main thread without a
 * wake-up per call: one timer, armed at the earliest deadline of the calls
 * running, its time stored in the pool's cells so that a thread starting a
 * call posts `channel-deadline` only when the watchdog is disarmed or armed
 * later than that call's deadline (thread-call-cells.ts).
 *
 * When it looks, it disarms first, then reads every slot (sequentially
 * consistent Atomics on both sides: it sees a call that began, or that call's
 * thread sees it disarmed and posts), claims each call past its limit (less
 * the time the process was stopped, as for every job) by compare-and-swap of
 * the serial it read to CLAIMED, and re-arms at the earliest deadline left. A
 * claimed call is the watchdog's to answer: `onClaim` writes the timeout and
 * ends the thread.
 */
import { CLAIMED, epochMs, POOL, SLOT, type Cells } from './thread-call-cells.js';

/** A call the watchdog took: where its answer goes. */
export interface ClaimedCall {
  fd: number;
  inode: bigint;
  frameId: number;
  limitMs: number;
}

export class ThreadCallWatchdog<T> {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly pool: Cells,
    /** The slots of the live call threads. */
    private readonly slots: () => Iterable<{ slot: Cells; owner: T }>,
    /** ms the process could run between two epoch times (StallClock: its stops left out). */
    private readonly ranSince: (fromEpochMs: number, nowEpochMs: number) => number,
    private readonly onClaim: (owner: T, call: ClaimedCall) => void,
  ) {}

  /** Looks at once: a thread said a call began for which the watchdog was not armed soon enough. */
  wake(): void {
    if (!this.stopped) this.look();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    Atomics.store(this.pool, POOL.armedAt, 0n);
  }

  private look(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    Atomics.store(this.pool, POOL.armedAt, 0n);
    const now = epochMs();
    let next: number | undefined;
    for (const { slot, owner } of this.slots()) {
      const state = Atomics.load(slot, SLOT.state);
      if (state <= 0n) continue;
      const start = Number(Atomics.load(slot, SLOT.startedAt));
      const limitMs = Number(Atomics.load(slot, SLOT.limitMs));
      let deadline = start + limitMs;
      if (deadline <= now) {
        const ran = this.ranSince(start, now);
        if (ran < limitMs) deadline = now + limitMs - ran;
        else {
          // Claimed only if it is still the call read above; the fields are that call's (its thread writes them before its serial).
          if (Atomics.compareExchange(slot, SLOT.state, state, CLAIMED) === state) {
            this.onClaim(owner, { fd: Number(Atomics.load(slot, SLOT.fd)), inode: Atomics.load(slot, SLOT.inode), frameId: Number(Atomics.load(slot, SLOT.frameId)), limitMs });
          }
          continue;
        }
      }
      if (next === undefined || deadline < next) next = deadline;
    }
    if (next === undefined) return;
    const at = Math.ceil(next);
    Atomics.store(this.pool, POOL.armedAt, BigInt(at));
    this.timer = setTimeout(() => this.look(), Math.max(0, at - epochMs()) + 1);
    this.timer.unref();
  }
}
