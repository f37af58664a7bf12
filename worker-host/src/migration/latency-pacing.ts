/**
 * Round 0 paced by the instance's own requests (issue 15; Clark et al.'s
 * adaptive rate limit, NSDI 2005, steered by the service's latency instead of
 * the dirtying rate). While round 0 copies, the source's cores are shared by
 * the copy and the instance's clients; the slow requests of a migration were
 * answered by the source with guest times under 0.1 ms: they waited for a
 * core. So the source watches how long its instance's requests take on the
 * host, less the guest's own time, and how late its main thread runs
 * (sampleLateness: a request waits for that thread to read it), and sends
 * round 0 at a rate that it finds as TCP finds a window: it **starts low**
 * (`startBytesPerS`), doubles the rate while the requests stay on time (slow
 * start), halves it when one runs late and from then on raises it by
 * `marginBytesPerS` only (additive increase), never above `capBytesPerS`; and
 * never waits more than `maxWaitMs` before a slice, the floor that makes every
 * migration finish. Before, the copy went at full speed until it saw a late
 * request: the first slices made requests late before the pacer knew.
 *
 *     const pacer = new LatencyPacer(0.4);   // the instance's usual host time, ms
 *     pacer.nextWaitMs(0);                    // 0: the first slice goes at once
 *     pacer.answered(0.3);                    // a request took 0.3 ms on the host: on time
 *     pacer.nextWaitMs(960 * 1024);           // 960 KiB at twice the start rate (at least the floor), less the time since the slice began
 */

export interface LatencyPacingOptions {
  /** A request may take this much longer on the host than usual before the copy slows down (ms). */
  allowanceMs: number;
  /** Round 0's first rate (bytes a second): low, so that the first slices make no request late. */
  startBytesPerS: number;
  /** Once a request ran late, the rate rises by this much for each slice while the requests are on time (bytes a second). */
  marginBytesPerS: number;
  /** The rate never rises above this (bytes a second). */
  capBytesPerS: number;
  /** The longest wait before a slice (ms): the floor of the rate, which makes every migration finish. */
  maxWaitMs: number;
}

const MiB = 1024 * 1024;

/**
 * Clark et al. start at 100 Mbit/s and add 50 Mbit/s a round. Here the start is under the floor of 960 KiB slices
 * (one every 32 ms, about 29 MiB/s), so round 0 begins at its floor; the cap is above what the copy reaches here.
 */
export const LATENCY_PACING: LatencyPacingOptions = { allowanceMs: 2, startBytesPerS: 16 * MiB, marginBytesPerS: 8 * MiB, capBytesPerS: 512 * MiB, maxWaitMs: 32 };

export class LatencyPacer {
  /** The longest host time of the requests answered since the last slice (ms), and how many were. */
  private worst = 0;
  private samples = 0;
  private rate: number;
  /** Doubling while on time, until the first late request (then additive). */
  private slowStart = true;
  /** When the last slice began (performance.now()), once one has. */
  private sliceAt: number | undefined;
  /** Every wait asked for so far (ms), for the report. */
  waitedMs = 0;

  constructor(
    /** The instance's usual host time for a request before the migration (ms). */
    private readonly usualMs: number,
    private readonly opts: LatencyPacingOptions = LATENCY_PACING,
  ) {
    if (!(usualMs >= 0)) throw new RangeError(`the usual host time must be a number of ms at or above 0, not ${usualMs}`);
    this.rate = opts.startBytesPerS;
  }

  /** The rate the copy goes at now (bytes a second). */
  get bytesPerS(): number {
    return this.rate;
  }

  /** A request of the instance was answered: `hostMs` on the host, its guest time left out. */
  answered(hostMs: number): void {
    this.samples++;
    if (hostMs > this.worst) this.worst = hostMs;
  }

  /**
   * Before the next slice, the last one having carried `lastBytes` (0 before the first): how long the copy waits
   * first (ms), so that the slices go at the rate — which this judges first by the requests answered since the
   * last slice (none: no evidence, the rate stays).
   */
  nextWaitMs(lastBytes: number, now = performance.now()): number {
    const { allowanceMs, marginBytesPerS, capBytesPerS, maxWaitMs } = this.opts;
    const floor = maxWaitMs > 0 ? (lastBytes * 1000) / maxWaitMs : 0;
    if (this.samples > 0) {
      if (this.worst > this.usualMs + allowanceMs) {
        this.rate = this.rate / 2;
        this.slowStart = false;
      } else this.rate = this.slowStart ? this.rate * 2 : this.rate + marginBytesPerS;
      this.rate = Math.min(capBytesPerS, Math.max(floor, this.rate));
    }
    this.worst = 0;
    this.samples = 0;
    const due = this.sliceAt === undefined ? 0 : (lastBytes * 1000) / this.rate - (now - this.sliceAt);
    const wait = Math.min(maxWaitMs, Math.max(0, due));
    this.sliceAt = now + wait;
    this.waitedMs += wait;
    return wait;
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
