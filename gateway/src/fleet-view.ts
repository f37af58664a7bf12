/**
 * The gateway's live view of the worker hosts, fed by a watch on the hosts
 * bucket. A record counts only while its heartbeat is fresh: KV entries that
 * expire by the bucket's TTL vanish without a delete notice.
 *
 * While the gateway cannot reach the broker, no heartbeat can reach it
 * either: hosts are judged from when the connection came back, so that a
 * broker restart does not look like every host dying (which would re-fork
 * every job's clones and replace every service instance, losing its state).
 * The same holds while the watch of the hosts bucket is stalled (on a nats
 * cluster, the bucket's stream electing a new leader after a node was lost:
 * heartbeats cannot be stored or delivered meanwhile; kv-watch.ts).
 *
 * A host that dies and is started again at once (a supervisor) keeps its id
 * and may beat again within its TTL: its record's `startedAt` tells the new
 * incarnation from the old one, whose work is gone with it. Work sent to a
 * host remembers the incarnation it went to (`incarnation()`).
 */
import type { Subscription } from '@nats-io/transport-node';
import { Buckets, decodeChecked, followKv, kvKeys, listen, Subjects, type Fabric, type FunctionRecord, type KvFollower, type HostRecord, type Logger } from '@flurry/core';
import { warmVersionKey } from './planning/host-states.js';

/** An incarnation replaced by a new one keeps counting as lost this long. */
const REPLACED_KEPT_MS = 60_000;

export class FleetView {
  private readonly hosts = new Map<string, HostRecord>();
  /**
   * The hosts whose last record lists a function version warm, by version (warmVersionKey): a call finds the hosts that
   * can take it without looking at every host in the fleet. Kept as records arrive, about twice a second per host.
   */
  private readonly warmOn = new Map<string, Map<string, HostRecord>>();
  /** Records of incarnations that a restarted host replaced, and when. */
  private replaced: { record: HostRecord; at: number }[] = [];
  private watch?: KvFollower;
  /** Broker outages hosts announced on reconnecting (host.reconnected), per incarnation: ahead of their stored heartbeats. */
  private readonly announcedOutages = new Map<string, { startedAt: number; outages: number }>();
  private reconnects?: Subscription;

  constructor(
    private readonly fabric: Fabric,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.reconnects = listen(this.fabric.nc, 'hostReconnected', Subjects.event('system', 'host.reconnected'), (event) => {
      if (event.kind !== 'host.reconnected') return;
      const known = this.announcedOutages.get(event.hostId);
      if (known?.startedAt === event.startedAt && known.outages >= event.brokerOutages) return;
      this.announcedOutages.set(event.hostId, { startedAt: event.startedAt, outages: event.brokerOutages });
    });
    this.watch = await followKv(this.fabric.hosts, {}, (e) => {
      if (e.operation !== 'PUT' || e.value.length === 0) return this.forget(e.key);
      const record = decodeChecked('HostRecord', e.value, e.key);
      if (record) this.record(e.key, record);
    }, this.log, 'hosts', () => this.fabric.nc.isClosed(), this.fabric.link);
  }

  /** A host's new record (its heartbeat), as the hosts bucket delivers it under `hostId`. */
  record(hostId: string, record: HostRecord): void {
    const before = this.hosts.get(hostId);
    if (before && before.startedAt !== record.startedAt) {
      const now = Date.now();
      this.replaced = [...this.replaced.filter((r) => now - r.at < REPLACED_KEPT_MS), { record: before, at: now }];
      this.log.warn({ hostId, pid: record.pid, before: before.pid }, 'host restarted: work sent to its last incarnation is lost');
    }
    this.hosts.set(hostId, record);
    if (before) for (const w of before.warm) this.warmOn.get(warmVersionKey(w))?.delete(hostId);
    for (const w of record.warm) {
      const key = warmVersionKey(w);
      let on = this.warmOn.get(key);
      if (!on) this.warmOn.set(key, (on = new Map()));
      on.set(hostId, record);
    }
    if (before) for (const w of before.warm) if (this.warmOn.get(warmVersionKey(w))?.size === 0) this.warmOn.delete(warmVersionKey(w));
  }

  /** A host's record deleted (deregistered) or expired. */
  forget(hostId: string): void {
    const before = this.hosts.get(hostId);
    this.hosts.delete(hostId);
    for (const w of before?.warm ?? []) {
      const on = this.warmOn.get(warmVersionKey(w));
      on?.delete(hostId);
      if (on?.size === 0) this.warmOn.delete(warmVersionKey(w));
    }
  }

  stop(): void {
    this.watch?.stop();
    this.reconnects?.unsubscribe();
  }

  /** Hosts that heartbeat recently (or were live when the broker went away), including draining ones. */
  live(now = Date.now()): HostRecord[] {
    const since = this.freshSince(now);
    return [...this.hosts.values()].filter((h) => isFresh(h, since));
  }

  /**
   * The live hosts holding `fn` warm (draining ones included): what a call looks at, in time proportional to
   * those hosts, not to the fleet.
   */
  liveWarm(fn: Pick<FunctionRecord, 'tenant' | 'name' | 'digest'>, now = Date.now()): HostRecord[] {
    const on = this.warmOn.get(warmVersionKey(fn));
    if (!on) return [];
    const since = this.freshSince(now);
    const out: HostRecord[] = [];
    for (const h of on.values()) if (isFresh(h, since)) out.push(h);
    return out;
  }

  /**
   * Hosts that stopped heartbeating within the last `withinMs` (paused, cut
   * off or dead, not yet forgotten): work sent to them may never be answered.
   */
  recentlyLost(withinMs: number, now = Date.now()): HostRecord[] {
    const since = this.freshSince(now);
    const silent = [...this.hosts.values()].filter((h) => !isFresh(h, since) && now - h.heartbeatAt < this.ttlMs + withinMs);
    return [...silent, ...this.replaced.filter((r) => now - r.at < withinMs).map((r) => r.record)];
  }

  /**
   * How often a host's broker connection dropped, as its last heartbeat or,
   * sooner, its reconnect announcement says: a change means a request it
   * held or a reply it sent may be lost.
   */
  brokerOutages(hostId: string): number | undefined {
    const record = this.hosts.get(hostId);
    const announced = this.announcedOutages.get(hostId);
    if (!record || announced?.startedAt !== record.startedAt) return record?.brokerOutages;
    return Math.max(record.brokerOutages ?? 0, announced.outages);
  }

  /** The incarnation of a host (when its process started), to tell later whether work sent to it died with it. */
  incarnation(hostId: string): number | undefined {
    return this.hosts.get(hostId)?.startedAt;
  }

  /**
   * Whether a host has been silent for `graceMs` past its TTL (or is not
   * known at all: deregistered, or never seen). Live hosts never are.
   */
  silentLongerThan(hostId: string, graceMs: number, now = Date.now()): boolean {
    const h = this.hosts.get(hostId);
    if (!h) return true;
    if (isFresh(h, this.freshSince(now))) return false;
    return !isFresh(h, this.freshSince(now - graceMs));
  }

  /**
   * A heartbeat counts as fresh until a TTL after it, or after the broker
   * came back (or the hosts watch delivers again) if that is later. While
   * heartbeats cannot arrive (the broker away, the watch stalled), a host is
   * judged as it stood when that began. All but the heartbeat is the same for every host, so it is worked out once
   * per query: a host is fresh when the later of its heartbeat and `floor` is after `at` (isFresh).
   */
  private freshSince(now: number): { at: number; floor: number } {
    const link = this.fabric.link;
    let at = now;
    if (!link.connected) at = Math.min(at, link.lastDownAt);
    const stalled = this.watch?.stalledSince();
    if (stalled !== undefined) at = Math.min(at, stalled);
    return { at: at - this.ttlMs, floor: Math.max(link.lastUpAt, this.watch?.resumedAt() ?? 0) };
  }

  /** Reads the bucket directly (for `GET /v1/hosts`, which must not depend on the watch having caught up). */
  async list(): Promise<HostRecord[]> {
    // Keyed by id: a key updated while the listing runs can be listed twice.
    const out = new Map<string, HostRecord>();
    for (const k of await kvKeys(this.fabric.jsm, Buckets.hosts)) {
      const e = await this.fabric.hosts.get(k);
      const record = e && e.operation === 'PUT' && e.value.length > 0 ? decodeChecked('HostRecord', e.value, k) : undefined;
      if (record) out.set(k, record);
    }
    const since = this.freshSince(Date.now());
    return [...out.values()].filter((h) => isFresh(h, since)).sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** Whether a host counts as live at the cut FleetView.freshSince worked out. */
function isFresh(h: HostRecord, since: { at: number; floor: number }): boolean {
  return Math.max(h.heartbeatAt, since.floor) > since.at;
}
