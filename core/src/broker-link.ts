/**
 * Whether this process reaches the broker now. One watcher of the NATS
 * connection's status events, shared by everything that must not wait on a
 * broker that is away: the gateway answers 503 `unavailable` with
 * Retry-After at once instead of letting a request wait for its timeout,
 * coordinators and controllers hold their judgement (a host whose heartbeats
 * cannot reach us is not lost), page caches and result publishers wait for
 * the broker instead of spending their retries.
 *
 * The client reconnects by itself (forever: `maxReconnectAttempts: -1`) and
 * re-creates its subscriptions; JetStream watches (ordered consumers) resume
 * on their own. A process that has not reached the broker for `maxOutageMs`
 * gives up (the `onGiveUp` callback: the process exits and its supervisor
 * starts it again).
 *
 *   const link = new BrokerLink(nc, { maxOutageMs: 600_000 });
 *   link.assertUp();              // throws FlurryError('unavailable', ..., { retryAfterSeconds })
 *   await link.whenUp(30_000);    // resolves once connected (rejects after 30 s)
 *   link.onChange((up) => ...);
 */
import { ConnectionError, NoRespondersError, RequestError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { FlurryError } from './errors.js';

export interface BrokerLinkOptions {
  /** Give up (onGiveUp) after the broker has been unreachable this long; 0: never. */
  maxOutageMs?: number;
  /** Seconds a client is told to wait (Retry-After) while the broker is away. */
  retryAfterSeconds?: number;
}

type Listener = (up: boolean) => void;

export class BrokerLink {
  private up = true;
  private downAt = 0;
  private upAt = 0;
  private outageCount = 0;
  private readonly listeners = new Set<Listener>();
  private readonly giveUpListeners = new Set<(downMs: number) => void>();
  private giveUpTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: BrokerLinkOptions = {},
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.set(false);
        else if (s.type === 'reconnect') this.set(true);
        else if (s.type === 'close') this.closed = true;
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      this.closed = true;
      clearTimeout(this.giveUpTimer);
    });
  }

  /** Connected to the broker now. */
  get connected(): boolean {
    return this.up;
  }

  /** The server_name of the nats-server node connected to (of a cluster: which one; it changes on a reconnect). */
  get server(): string | undefined {
    return this.nc.info?.server_name;
  }

  /** When the last outage began (ms since the epoch; 0 before any). */
  get lastDownAt(): number {
    return this.downAt;
  }

  /** When the connection came back from the last outage (0 before any): a host's silence before it says nothing. */
  get lastUpAt(): number {
    return this.upAt;
  }

  /** Outages since the process connected (NATS reconnects, for metrics and logs). */
  get outages(): number {
    return this.outageCount;
  }

  /** Calls `listener(up)` on every change; returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called once the broker has been away longer than maxOutageMs, with how long. */
  onGiveUp(listener: (downMs: number) => void): void {
    this.giveUpListeners.add(listener);
  }

  /** The error for work that needs the broker while it is away: 503 with Retry-After. */
  unavailable(what = 'the fleet\'s message broker'): FlurryError {
    const seconds = Math.max(1, Math.round((Date.now() - this.downAt) / 1000));
    return new FlurryError('unavailable', `${what} is unreachable (for ${seconds} s); retry`, { retryAfterSeconds: this.opts.retryAfterSeconds ?? 1 });
  }

  /** Throws `unavailable` while the broker is away. */
  assertUp(): void {
    if (!this.up) throw this.unavailable();
  }

  /** Resolves once connected; rejects with `unavailable` after `timeoutMs` (or when the connection closes). */
  whenUp(timeoutMs?: number): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const off = this.onChange((up) => {
        if (!up) return;
        clearTimeout(timer);
        off();
        resolve();
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(this.unavailable());
        }, timeoutMs);
        timer.unref?.();
      }
    });
  }

  /** A promise that rejects with `unavailable` at the next disconnect; `cancel` stops watching. */
  nextOutage(): { outage: Promise<never>; cancel: () => void } {
    let off = () => {};
    const outage = new Promise<never>((_, reject) => {
      off = this.onChange((up) => {
        if (up) return;
        off();
        reject(new FlurryError('unavailable', 'the connection to the fleet\'s message broker was lost while this request was in flight; its outcome is unknown', { retryAfterSeconds: this.opts.retryAfterSeconds ?? 1 }));
      });
    });
    outage.catch(() => undefined);
    return { outage, cancel: () => off() };
  }

  /** `work`, or `unavailable` if the connection drops before it settles (its outcome is then unknown). */
  async orOutage<T>(work: Promise<T>): Promise<T> {
    const outage = this.nextOutage();
    try {
      return await Promise.race([work, outage.outage]);
    } finally {
      outage.cancel();
    }
  }

  private set(up: boolean): void {
    if (up === this.up || this.closed) return;
    this.up = up;
    if (up) {
      this.upAt = Date.now();
      clearTimeout(this.giveUpTimer);
      this.giveUpTimer = undefined;
    } else {
      this.downAt = Date.now();
      this.outageCount++;
      const max = this.opts.maxOutageMs ?? 0;
      if (max > 0) {
        this.giveUpTimer = setTimeout(() => {
          if (this.up || this.closed) return;
          for (const l of this.giveUpListeners) l(Date.now() - this.downAt);
        }, max);
      }
    }
    for (const l of [...this.listeners]) l(up);
  }
}

/**
 * Logs the node connected to now, and the link's outages on `log` (one line
 * when the broker goes away, one when it is back, naming the node reached:
 * on a cluster, often another one).
 */
export function logBrokerLink(link: BrokerLink, log: { warn(o: object, m: string): void; info(o: object, m: string): void }): void {
  log.info({ server: link.server }, 'broker connected');
  link.onChange((up) => {
    if (up) log.info({ server: link.server, outageMs: Date.now() - link.lastDownAt, outages: link.outages }, 'broker reachable again');
    else log.warn({ outages: link.outages }, 'broker connection lost; reconnecting');
  });
}

/**
 * Whether `err` says the broker (or a JetStream API behind it) did not answer,
 * rather than that the work itself is wrong: such work is tried again, not failed.
 */
export function isBrokerFailure(err: unknown): boolean {
  if (err instanceof TimeoutError || err instanceof NoRespondersError || err instanceof ConnectionError || err instanceof RequestError) return true;
  // The JetStream client's name for a request nobody answered (a stream between leaders on a cluster); its class is not exported.
  if (err instanceof Error && err.name === 'JetStreamNotEnabled') return true;
  // JetStream answers 503 when its API has no responder (a server starting, a stream's leader moving).
  if (err instanceof JetStreamApiError) return err.status === 503 && err.code !== 10077;
  // A failed call (nats-call.ts CallFailed) or a wrapped client error: judged by what the client threw.
  if (err instanceof FlurryError && (err.code === 'unavailable' || err.code === 'timeout') && err.cause !== undefined) return isBrokerFailure(err.cause);
  return false;
}
