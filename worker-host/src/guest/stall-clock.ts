/**
 * How long this process was stopped (SIGSTOP, a VM paused, the machine
 * swapping): a ticker notes every gap between its ticks much longer than it
 * asked for. A guest's time limit counts the time the guest could run, not
 * the time the whole process stood still: a host paused for 11 s must not
 * find, when it resumes, that every call it held ran past a 10 s limit (and
 * terminate their threads, destroying service instances with their state).
 *
 *   const clock = new StallClock();
 *   const ran = clock.ranSince(startedAt); // wall time since, less the stops
 */

/** How often the ticker ticks; a gap longer than this plus SLACK_MS counts as a stop. */
const TICK_MS = 250;
const SLACK_MS = 750;
/** Stops older than this are forgotten (no time limit is longer). */
const KEEP_MS = 24 * 3_600_000;

export class StallClock {
  private readonly stops: { from: number; to: number }[] = [];
  private last: number;
  private readonly timer: NodeJS.Timeout;

  constructor(now = performance.now()) {
    this.last = now;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** Notes a stop now if the ticker is late: the timers that fire after it then see it. */
  tick(now = performance.now()): void {
    if (now - this.last > TICK_MS + SLACK_MS) {
      this.stops.push({ from: this.last + TICK_MS, to: now });
      while (this.stops.length > 0 && now - this.stops[0]!.to > KEEP_MS) this.stops.shift();
    }
    this.last = now;
  }

  /** Milliseconds since `since` (performance.now()) that the process was not stopped. */
  ranSince(since: number, now = performance.now()): number {
    this.tick(now);
    let stopped = 0;
    for (const s of this.stops) stopped += Math.max(0, Math.min(s.to, now) - Math.max(s.from, since));
    return now - since - stopped;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
