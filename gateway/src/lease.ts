/**
 * A leader lease on one key of a JetStream KV bucket whose entries expire
 * after the lease TTL: the holder renews the key every quarter TTL; every
 * other replica tries to create it at the same pace and wins once the holder
 * stops renewing (or deletes it on a clean stop). The job coordinator and the
 * services controller each hold one, so each runs on one gateway at a time.
 *
 *   const lease = new Lease(kv, 'coordinator', 5000, log, { onGain: () => lead(), onLose: () => stepDown() });
 *   lease.start();
 */
import type { KV } from '@nats-io/kv';
import { encode, newId, type Logger } from '@flurry/core';

export interface LeaseHandlers {
  /** Called once the lease is taken; a rejection is logged and the lease kept. */
  onGain(): Promise<void> | void;
  /** Called when a renewal fails (another replica may hold it now) or on stop. */
  onLose(): void;
}

export class Lease {
  readonly id = newId('lease');
  private revision = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly handlers: LeaseHandlers,
  ) {}

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

  private async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.held) {
        this.revision = await this.kv.update(this.key, encode({ id: this.id, at: Date.now() }), this.revision);
      } else {
        const revision = await this.kv.create(this.key, encode({ id: this.id, at: Date.now() }));
        if (this.stopped) {
          // Stopped while the create was on its way: hand it back.
          await this.kv.delete(this.key).catch(() => undefined);
          return;
        }
        this.revision = revision;
        this.log.info({ lease: this.key, holder: this.id }, 'lease taken');
        await Promise.resolve(this.handlers.onGain()).catch((err: unknown) => this.log.error({ lease: this.key, err }, 'taking over after the lease failed'));
      }
    } catch (err) {
      if (this.held) {
        this.log.warn({ lease: this.key, holder: this.id, err: (err as Error).message }, 'lease lost');
        this.lose();
      }
    }
  }

  private lose(): void {
    if (!this.held) return;
    this.revision = 0;
    this.handlers.onLose();
  }
}
