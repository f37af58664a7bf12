/**
 * A leader lease on one key of a JetStream KV bucket whose entries expire
 * after the lease TTL: the holder renews the key every quarter TTL; every
 * other replica tries to create it at the same pace and wins once the holder
 * stops renewing (or deletes it on a clean stop). The job coordinator and the
 * services controller each hold one, so each runs on one gateway at a time.
 *
 * A renewal the server refuses (another replica holds the key) loses the
 * lease at once. A renewal that gets no answer (the broker is away) leaves it
 * in doubt: nobody else can take it before the key expires, so the holder
 * keeps it until 80% of a TTL after its last successful renewal, and renews
 * at once when the broker is back. A broker restart shorter than that does not
 * make the coordinator drop and resume every job.
 *
 *   const lease = new Lease(kv, 'coordinator', 5000, log, { onGain: () => lead(), onLose: () => stepDown() }, fabric.link);
 *   lease.start();
 */
import type { KV } from '@nats-io/kv';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { decode, encode, newId, type BrokerLink, type Logger } from '@flurry/core';

/** The holder id a lease record names (`{ id, at }`); undefined for anything else. */
function holderOf(value: Uint8Array): string | undefined {
  try {
    const v = decode<{ id?: unknown }>(value, 4096);
    return typeof v?.id === 'string' ? v.id : undefined;
  } catch {
    return undefined;
  }
}

export interface LeaseHandlers {
  /**
   * Called once the lease is taken. A rejection (taking over needs the
   * broker, which may fail as a node is lost) lets the lease go: onLose is
   * called, and the lease is taken again, and onGain called again, at a later
   * renewal (here or on another replica).
   */
  onGain(): Promise<void> | void;
  /** Called when a renewal fails (another replica may hold it now) or on stop. */
  onLose(): void;
}

export class Lease {
  readonly id = newId('lease');
  private revision = 0;
  /** When the last renewal that succeeded was sent. */
  private renewedAt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** A renewal on its way: the next one waits for it (two renewals of one revision would refuse each other). */
  private renewing = false;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly handlers: LeaseHandlers,
    /** The broker connection: no renewal is sent while it is away, and one is sent as soon as it is back. */
    private readonly link?: BrokerLink,
  ) {
    link?.onChange((up) => {
      if (up) this.renewNow();
    });
  }

  get held(): boolean {
    return this.revision > 0;
  }

  start(): void {
    const tick = () => {
      void this.renew().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, Math.max(200, Math.floor(this.ttlMs / 4)));
      });
    };
    tick();
  }

  /** Lets go; a holder deletes the key so that a standby takes over at once instead of after the TTL. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const wasHeld = this.held;
    this.lose();
    if (wasHeld) await this.kv.delete(this.key).catch(() => undefined);
  }

  /** Renews now (the broker is back after an outage); the periodic renewals go on as before. */
  private renewNow(): void {
    if (this.held && !this.stopped) void this.renew();
  }

  private async renew(): Promise<void> {
    if (this.stopped || this.renewing) return;
    this.renewing = true;
    try {
      await this.renewOnce();
    } finally {
      this.renewing = false;
    }
  }

  private async renewOnce(): Promise<void> {
    if (this.link && !this.link.connected) {
      // A request now would only wait for its timeout; the reconnect renews at once.
      if (this.held && Date.now() - this.renewedAt >= this.ttlMs * 0.8) {
        this.log.warn({ lease: this.key, holder: this.id }, 'lease lost: the broker has been away longer than the lease');
        this.lose();
      }
      return;
    }
    const sent = Date.now();
    try {
      if (this.held) {
        this.revision = await this.kv.update(this.key, encode({ id: this.id, at: Date.now() }), this.revision);
        this.renewedAt = sent;
      } else {
        const revision = await this.kv.create(this.key, encode({ id: this.id, at: Date.now() }));
        this.renewedAt = sent;
        if (this.stopped) {
          // Stopped while the create was on its way: hand it back.
          await this.kv.delete(this.key).catch(() => undefined);
          return;
        }
        this.revision = revision;
        this.log.info({ lease: this.key, holder: this.id }, 'lease taken');
        await Promise.resolve(this.handlers.onGain()).catch(async (err: unknown) => {
          this.log.error({ lease: this.key, err }, 'taking over after the lease failed; letting it go to take it again');
          this.lose();
          await this.kv.delete(this.key).catch(() => undefined);
        });
      }
    } catch (err) {
      if (!this.held) return;
      // A renewal stored whose answer was lost (the node answering died): the key holds this holder's record already.
      if (await this.stillMine(err)) {
        this.renewedAt = sent;
        return;
      }
      const refused = err instanceof JetStreamApiError;
      if (!refused && Date.now() - this.renewedAt < this.ttlMs * 0.8) {
        this.log.warn({ lease: this.key, holder: this.id, err: (err as Error).message }, 'lease renewal got no answer; still held until it could have expired');
        return;
      }
      this.log.warn({ lease: this.key, holder: this.id, err: (err as Error).message }, 'lease lost');
      this.lose();
    }
  }

  /** After a refused renewal: whether the key holds this holder's own record (its revision is taken). */
  private async stillMine(err: unknown): Promise<boolean> {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamWrongLastSequence) return false;
    const e = await this.kv.get(this.key).catch(() => null);
    if (!e || e.operation !== 'PUT' || holderOf(e.value) !== this.id) return false;
    this.revision = e.revision;
    return true;
  }

  private lose(): void {
    if (!this.held) return;
    this.revision = 0;
    this.handlers.onLose();
  }
}
