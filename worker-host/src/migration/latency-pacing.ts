/**
 * Round 0 paced by the instance's own requests (issue 15; Clark et al.'s
 * adaptive rate limit, NSDI 2005, steered by the service's latency instead of
 * a rate). While round 0 copies, the source's cores are shared by the copy and
 * the instance's clients; the slow requests of a migration were answered by
 * the source with guest times under 0.1 ms: they waited for a core. So the
 * source watches how long its instance's requests take on the host, less the
 * guest's own time, and how late its main thread runs (sampleLateness: a
 * request waits for that thread to read it), and waits before the next slice
 * while either is longer
 * than they did before the migration (doubling the wait each time they do,
 * halving it each time they do not), never more than `maxWaitMs` a slice: the
 * floor that makes every migration finish.
 *
 *     const pacer = new LatencyPacer(0.4);      // the instance's usual host time, ms
 *     pacer.answered(6.2);                       // a request took 6.2 ms on the host
 *     pacer.nextWaitMs();                        // 4: the copy waits before its next slice
 */

export interface LatencyPacingOptions {
  /** A request may take this much longer on the host than usual before the copy backs off (ms). */
  allowanceMs: number;
  /** The first wait once requests run late (ms); it doubles while they stay late. */
  firstWaitMs: number;
  /** The longest wait before a slice (ms): the floor of the copy's rate. */
  maxWaitMs: number;
}

export const LATENCY_PACING: LatencyPacingOptions = { allowanceMs: 2, firstWaitMs: 4, maxWaitMs: 32 };

export class LatencyPacer {
  /** The longest host time of the requests answered since the last slice (ms). */
  private worst = 0;
  private waitMs = 0;
  /** Every wait asked for so far (ms), for the report. */
  waitedMs = 0;

  constructor(
    /** The instance's usual host time for a request before the migration (ms). */
    private readonly usualMs: number,
    private readonly opts: LatencyPacingOptions = LATENCY_PACING,
  ) {
    if (!(usualMs >= 0)) throw new RangeError(`the usual host time must be a number of ms at or above 0, not ${usualMs}`);
  }

  /** A request of the instance was answered: `hostMs` on the host, its guest time left out. */
  answered(hostMs: number): void {
    if (hostMs > this.worst) this.worst = hostMs;
  }

  /** Before the next slice: how long the copy waits first (ms). */
  nextWaitMs(): number {
    const late = this.worst > this.usualMs + this.opts.allowanceMs;
    this.worst = 0;
    if (late) this.waitMs = Math.min(this.opts.maxWaitMs, Math.max(this.opts.firstWaitMs, this.waitMs * 2));
    else this.waitMs = this.waitMs / 2 < this.opts.firstWaitMs / 2 ? 0 : this.waitMs / 2;
    this.waitedMs += this.waitMs;
    return this.waitMs;
  }
}

/** How often the main thread's lateness is sampled while a migration paces by it (ms). */
export const LATENESS_EVERY_MS = 4;

/**
 * A request reaches the instance only once the host's main thread reads it:
 * while that thread waits for a core, requests wait too, before any host time
 * the pacer is told of. So while it runs, this timer tells the pacer how late
 * it fired, as if a request had waited that long. Stopped with `stop`.
 */
export function sampleLateness(pacer: LatencyPacer, everyMs = LATENESS_EVERY_MS): { stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const due = performance.now() + everyMs;
    timer = setTimeout(() => {
      pacer.answered(performance.now() - due);
      arm();
    }, everyMs);
  };
  arm();
  return { stop: () => clearTimeout(timer) };
}
