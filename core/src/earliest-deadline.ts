/**
 * One timer for many deadlines. Calls with a time limit each used to start a
 * `setTimeout` and clear it when they were answered: a timer object and a
 * closure per call, and two timer-list updates, on every thread a call
 * passes. Here the owner keeps each deadline as a number beside its call,
 * and one timer is armed at the earliest deadline asked for. A call that
 * ends early leaves the timer alone; when it fires, the owner expires what is
 * due and says its earliest deadline left, and the timer is armed for that.
 * With limits of equal length a later call's deadline is never earlier, so
 * after the first call the timer is re-armed only when it fires.
 *
 *   const deadlines = new EarliestDeadline((now) => expireDue(now)); // returns the next deadline, or undefined
 *   deadlines.require(performance.now() + timeoutMs);
 *
 * Times are performance.now() milliseconds. The timer does not keep the
 * process alive: what waits on a deadline (a socket, a thread) does that.
 */
export class EarliestDeadline {
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity when it is not armed. */
  private armedFor = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(
    /** Ends everything due at `now` and answers the earliest deadline left (undefined: none). */
    private readonly expire: (now: number) => number | undefined,
  ) {}

  /** Makes sure the timer fires no later than `at`. */
  require(at: number): void {
    if (at < this.armedFor && !this.stopped) this.arm(at);
  }

  /** Disarms it for good (its owner closed). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    // A timer may fire a fraction of a millisecond early: `fire` then re-arms for what is not due yet.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const next = this.expire(performance.now());
    if (next !== undefined) this.require(next);
  };
}
