/**
 * The host's record in the hosts bucket: looked at every heartbeat period and
 * written when it changed, else at least every third of the hosts' TTL (a
 * liveness beat: two may be lost before the host counts as gone); at once
 * when asked, or shortly after a change others act on (several changes at
 * once make one write). The bucket's TTL drops a host that stops beating.
 * Each write is stored by JetStream and decoded by every watcher of the
 * bucket: an idle fleet's writes were most of what it cost the cores.
 */
import { encode, type BrokerLink, type Fabric, type HostRecord, type Logger } from '@flurry/core';

export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private soonTimer?: NodeJS.Timeout;
  /** The record last written, but for its `heartbeatAt`, and when (performance.now()). */
  private written?: { content: string; at: number };

  constructor(
    private readonly hosts: Fabric['hosts'],
    private readonly hostId: string,
    private readonly link: BrokerLink,
    private readonly record: () => HostRecord,
    private readonly periodMs: number,
    /** The longest an unchanged record goes unwritten: a third of the hosts' TTL. */
    private readonly livenessMs: number,
    private readonly log: Logger,
  ) {}

  /** Beating every period (after a first beat now). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.tick(), this.periodMs);
    this.timer.unref();
  }

  /** Writes the record now. */
  async beat(): Promise<void> {
    await this.write(this.record());
  }

  /** The period's look: writes the record if it changed, or if the liveness beat is due. */
  private async tick(): Promise<void> {
    const record = this.record();
    const content = contentOf(record);
    const w = this.written;
    if (w && w.content === content && performance.now() - w.at < this.livenessMs) return;
    await this.write(record, content);
  }

  private async write(record: HostRecord, content = contentOf(record)): Promise<void> {
    // Nothing reaches the hosts bucket while the broker is away; the reconnect beats at once.
    if (!this.link.connected) return;
    try {
      await this.hosts.put(this.hostId, encode(record));
      this.written = { content, at: performance.now() };
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

/** What a record says but for when it was written. */
function contentOf(record: HostRecord): string {
  return JSON.stringify({ ...record, heartbeatAt: 0 });
}
