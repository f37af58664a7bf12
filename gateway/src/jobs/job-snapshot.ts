/**
 * A job's snapshot: its parent (booted on the best host, planning/job-hosts.ts
 * ranks them, and asked in turn), the descriptor its clones fork from, which
 * hosts have its pages, noticing its parent lost, and letting go of it when
 * the job ends (job-release.ts). A cold job has no parent: its clones boot
 * from the module, and its "snapshot" is the cold boot's id.
 *
 * The coordinator remembers where it last asked to keep a parent of each key
 * (ParentHostMemory), so that jobs with the same key go there (and share it)
 * before the host's record lists it.
 */
import {
  CallFailed, coldBootDescriptor, encodeDescriptor, FlurryError, initDigest, parentKeyString, requestSnapshot, toWireError,
  type BrokerLink, type FunctionRecord, type HostRecord, type JobEventKind, type JobSpec, type Logger, type ParentKey, type SnapshotMade, type SnapshotRequest, type StoredJob, type WireError,
} from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FleetView } from '../fleet-view.js';
import { isWarmOn } from '../planning/host-states.js';
import { jobParentHosts, keptParentRank } from '../planning/job-hosts.js';
import { initialMemoryOf } from '../planning/memory-room.js';
import { GUEST_FAILURES } from './clone-attempts.js';
import { isColdBoot } from './job-forks.js';
import { releaseJobSnapshot, releaseOn } from './job-release.js';
import type { JobStore } from './job-store.js';

/** Keys remembered by a coordinator: the most recent ones (a hint; hosts' records say where parents really are). */
const REMEMBERED_PARENT_HOSTS = 1024;

/** Where a coordinator last asked for a kept parent, by ParentKey string; the oldest keys are forgotten first. */
export class ParentHostMemory {
  private readonly hosts = new Map<string, string>();

  get(key: string): string | undefined {
    return this.hosts.get(key);
  }

  remember(key: string, host: string): void {
    this.hosts.delete(key);
    this.hosts.set(key, host);
    if (this.hosts.size > REMEMBERED_PARENT_HOSTS) this.hosts.delete(this.hosts.keys().next().value!);
  }
}

export interface SnapshotDeps {
  nc: NatsConnection;
  link: BrokerLink;
  log: Logger;
  store: JobStore;
  fleet: FleetView;
  parentHosts: ParentHostMemory;
  snapshotTimeoutMs: number;
  getFunction(tenant: string, name: string): Promise<FunctionRecord>;
}

/** What the snapshot tells the job's run. */
export interface SnapshotOwner {
  readonly stored: StoredJob;
  /** The job ended or the run stopped. */
  over(): boolean;
  emit(kind: JobEventKind, fields: Record<string, unknown>): void;
  setState(state: StoredJob['record']['state']): void;
  fail(error: WireError): Promise<void>;
}

export class JobSnapshot {
  /** The encoded descriptor clones fork from; undefined until the parent is snapshotted (or after it was lost). */
  descriptor?: Uint8Array;
  /** Hosts that have (or had) clones of the current snapshot, and so its pages. */
  private readonly hostsWithPages = new Set<string>();
  private snapshotting = false;
  /** The write of the current descriptor to the store (it never throws). */
  descriptorStored: Promise<void> = Promise.resolve();

  constructor(
    private readonly job: SnapshotOwner,
    /** Undefined until the run has read it from the store. */
    private readonly spec: () => JobSpec | undefined,
    private readonly deps: SnapshotDeps,
  ) {}

  private get record() {
    return this.job.stored.record;
  }

  /** Whether the parent outlives the job for later jobs with the same key (docs/jobs.md, "Kept parents"). */
  get keepParent(): boolean {
    return !isColdBoot(this.spec()) && this.spec()?.keepParent !== false;
  }

  /** The id the hosts know this job's clones by: the snapshot's, or the cold boot's. */
  get bootId(): string | undefined {
    return isColdBoot(this.spec()) ? `cold.${this.record.id}` : this.record.snapshotId;
  }

  /**
   * Whether the descriptor is stored with the job for a coordinator that resumes it: only when the parent is
   * not kept. A kept parent's host answers a snapshot request for it at once (the same snapshot), so a
   * resuming coordinator asks that host again instead, and a warm job writes no object for it.
   */
  private get storesDescriptor(): boolean {
    return !this.keepParent;
  }

  /** The kept-parent key of the job's parent (hosts keep parents by it). */
  private parentKey(): ParentKey {
    const spec = this.spec()!;
    return { tenant: this.record.tenant, moduleDigest: this.record.digest, initDigest: initDigest(spec.init, spec.initData) };
  }

  /**
   * Reads back what the record knows: the descriptor kept in the store (for a kept parent, the next step's
   * make asks again, the record's parent host remembered as keeping it), and the hosts that may have its pages.
   */
  async resume(): Promise<void> {
    const { tenant, id, function: fn, digest } = this.record;
    if (isColdBoot(this.spec())) this.descriptor = encodeDescriptor(coldBootDescriptor({ bootId: `cold.${id}`, tenant, function: fn, moduleDigest: digest }));
    else if (this.record.snapshotId && this.storesDescriptor) this.descriptor = (await this.deps.store.getBlob(`${tenant}/${id}/descriptor/${this.record.snapshotId}`)) ?? undefined;
    else if (this.record.parentHost && this.keepParent) this.deps.parentHosts.remember(parentKeyString(this.parentKey()), this.record.parentHost);
    if (!this.descriptor) this.record.snapshotId = undefined;
    if (this.record.parentHost) this.hostsWithPages.add(this.record.parentHost);
    for (const c of this.record.clonesDetail) if (c.host && c.state !== 'done') this.hostsWithPages.add(c.host);
  }

  /** Clones went to `host`: it caches the snapshot's pages from now on. */
  sentTo(host: string): void {
    this.hostsWithPages.add(host);
  }

  /** Hosts that cache the snapshot's pages: this job's clone hosts, and (for a kept parent) earlier jobs'. */
  hasPages = (h: HostRecord): boolean => {
    const snapshotId = this.record.snapshotId;
    return this.hostsWithPages.has(h.id) || (snapshotId !== undefined && h.pageCaches?.includes(snapshotId) === true);
  };

  /** The parent's host is gone, or restarted (a new incarnation has none of the old one's snapshots). */
  parentLost(liveIds: ReadonlySet<string>): boolean {
    const host = this.record.parentHost;
    if (host === undefined || !liveIds.has(host)) return true;
    return this.job.stored.parentIncarnation !== undefined && this.deps.fleet.incarnation(host) !== this.job.stored.parentIncarnation;
  }

  /** The snapshot is gone with its parent: forget it, and drop the live hosts' pages of it (stopping its clones there). */
  dropLost(liveIds: ReadonlySet<string>): void {
    const { tenant, id, snapshotId } = this.record;
    const others = [...this.hostsWithPages].filter((h) => liveIds.has(h));
    this.record.snapshotId = undefined;
    this.record.parentHost = undefined;
    this.descriptor = undefined;
    this.hostsWithPages.clear();
    if (snapshotId) void releaseOn(this.deps.nc, this.deps.log, { tenant, jobId: id, snapshotId }, others, true);
  }

  /**
   * Boots the parent on the best host: one keeping a parent with the job's
   * key first (it is reused: no init, no new snapshot), then the function
   * warm there, then most free slots; the next host when one fails, except
   * after a guest failure (an init that fails fails everywhere).
   */
  async make(live: HostRecord[], freeSlots: (h: HostRecord) => number): Promise<void> {
    if (this.snapshotting) return;
    this.snapshotting = true;
    try {
      const { tenant, id, function: name, digest } = this.record;
      const fn = await this.deps.getFunction(tenant, name).catch(() => undefined);
      const spec = this.spec()!;
      const key = this.parentKey();
      const keyString = parentKeyString(key);
      const keeps = (h: HostRecord) => (this.keepParent ? keptParentRank(h, key, this.deps.parentHosts.get(keyString)) : 0);
      const candidates = jobParentHosts(live, { keeps, warm: (h) => fn !== undefined && isWarmOn(h, fn), bytes: initialMemoryOf(fn), freeSlots });
      if (candidates.length === 0) {
        this.deps.log.warn({ jobId: id }, 'no live host for the parent; waiting');
        return;
      }
      this.job.setState('snapshotting');
      this.record.startedAt ??= Date.now();
      const request: SnapshotRequest = { requestId: id, tenant, name, digest, initInput: spec.init, initData: spec.initData, keep: this.keepParent };
      const got = await this.snapshotOnFirst(candidates, request, (host) => {
        this.job.emit('placed', { host });
        if (this.keepParent) this.deps.parentHosts.remember(keyString, host);
      });
      if (!('made' in got)) {
        await this.job.fail({ code: got.error?.code ?? 'unavailable', message: `the parent could not be started: ${got.error?.message}` });
        return;
      }
      const { host, made } = got;
      if (this.job.over()) {
        void releaseOn(this.deps.nc, this.deps.log, { tenant, jobId: id, snapshotId: made.snapshotId }, [host], false);
        return;
      }
      // Stored while the clones are forked, not before: a coordinator that resumes the job before it is
      // stored makes the snapshot again.
      if (this.storesDescriptor) this.descriptorStored = this.deps.store.putBlob(`${tenant}/${id}/descriptor/${made.snapshotId}`, made.descriptor).catch((err: unknown) => {
        this.deps.log.warn({ jobId: id, snapshotId: made.snapshotId, err: (err as Error).message }, 'the snapshot descriptor was not stored');
      });
      this.descriptor = made.descriptor;
      this.record.snapshotId = made.snapshotId;
      this.record.parentHost = host;
      this.job.stored.parentIncarnation = this.deps.fleet.incarnation(host);
      this.record.parentReused = made.reused === true;
      this.record.initMs = Math.round(made.initMs);
      this.record.snapshotMs = Math.round(made.snapshotMs);
      this.hostsWithPages.add(host);
      this.job.setState('running');
      this.job.emit('snapshot', { host, snapshotId: made.snapshotId, initMs: made.initMs, snapshotMs: made.snapshotMs, reused: made.reused === true });
      // Written with the clones' forks by the run's next write (at once after a boot that took longer than the
      // writer's period): a coordinator that resumes the job before makes the snapshot again, as above.
    } finally {
      this.snapshotting = false;
    }
  }

  /**
   * The first of `candidates` that makes the snapshot, or the last error (none
   * after a guest failure). Cut off by a broker outage, it throws: the job's
   * next step asks again (a parent made meanwhile is kept and reused).
   */
  private async snapshotOnFirst(candidates: readonly HostRecord[], request: SnapshotRequest, onTry: (host: string) => void): Promise<{ host: string; made: SnapshotMade } | { error?: WireError }> {
    const { nc, link, log, snapshotTimeoutMs } = this.deps;
    let error: WireError | undefined;
    const outagesBefore = link.outages;
    for (const host of candidates) {
      onTry(host.id);
      try {
        return { host: host.id, made: await requestSnapshot(nc, host.id, request, { timeoutMs: snapshotTimeoutMs }) };
      } catch (err) {
        if (!link.connected || link.outages !== outagesBefore) throw err;
        error = toWireError(err);
        log.warn({ jobId: request.requestId, hostId: host.id, err: error.message }, 'snapshot failed');
        // The parent's own failure, as its host answered (not a call that got no answer).
        if (err instanceof FlurryError && !(err instanceof CallFailed) && GUEST_FAILURES.has(err.code)) break;
      }
    }
    return { error };
  }

  /** The job is over: its clones are stopped (when asked), and it lets go of the snapshot on the live hosts. */
  async release(stopClones: boolean): Promise<void> {
    const snapshotId = this.bootId;
    if (!snapshotId) return;
    const live = new Set(this.deps.fleet.live().map((h) => h.id));
    const parent = this.record.parentHost;
    await releaseJobSnapshot(this.deps.nc, this.deps.log, {
      tenant: this.record.tenant, jobId: this.record.id, snapshotId, keepParent: this.keepParent,
      parent: parent !== undefined && live.has(parent) ? parent : undefined,
      hostsWithPages: [...this.hostsWithPages].filter((h) => live.has(h)),
    }, stopClones);
  }
}
