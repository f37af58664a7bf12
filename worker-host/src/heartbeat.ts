/**
 * The host's record in the hosts bucket: written every heartbeat period, at
 * once when asked, or shortly after a change others act on (several changes
 * at once make one write). The bucket's TTL drops a host that stops beating.
 */
import { encode, type BrokerLink, type Fabric, type HostRecord, type Logger } from '@flurry/core';

export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private soonTimer?: NodeJS.Timeout;

  constructor(
    private readonly hosts: Fabric['hosts'],
    private readonly hostId: string,
    private readonly link: BrokerLink,
    private readonly record: () => HostRecord,
    private readonly periodMs: number,
    private readonly log: Logger,
  ) {}

  /** Beating every period (after a first beat now). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.periodMs);
    this.timer.unref();
  }

  /** Writes the record now. */
  async beat(): Promise<void> {
    // Nothing reaches the hosts bucket while the broker is away; the reconnect beats at once.
    if (!this.link.connected) return;
    try {
      await this.hosts.put(this.hostId, encode(this.record()));
    } catch (err) {
      this.log.warn({ err }, 'heartbeat failed');
    }
  }

  /** One beat shortly, for changes others act on (kept parents); several changes at once make one. */
  soon(): void {
    if (this.soonTimer || !this.timer) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      void this.beat();
    }, 20);
    this.soonTimer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.soonTimer);
  }

  /** Removes the record: the host is gone. */
  async deregister(): Promise<void> {
    await this.hosts.delete(this.hostId).catch((err: unknown) => this.log.warn({ err }, 'deregister failed'));
  }
}
