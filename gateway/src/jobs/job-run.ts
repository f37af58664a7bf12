/**
 * One job, driven by the coordinator: snapshot the parent, fork clones over
 * the live hosts by free guest slots, gather results from the results stream,
 * retry failed clones, reduce, release, finish. Everything it knows is in the
 * job's KV record and the results stream, so a coordinator that takes over
 * (or restarts) resumes a job where it stood.
 */
import { randomBytes } from 'node:crypto';
import { createInbox, type Subscription } from '@nats-io/transport-node';
import {
  coldBootDescriptor, decodeChecked, decodeOrRefuse, encode, isBrokerFailure, encodeDescriptor, FlurryError, frameReduceInput, initDigest, JobObjects, parentKeyString, JobSubjects, LARGE_JOB_DATA_BYTES, requestSnapshot, ResultsStream, Subjects, TERMINAL_JOB_STATES, toWireError, untilStored,
  type CancelRequest, type ReleaseRequest, type CloneDetail, type CloneProgress, type CloneResult, type ErrorCode, type ForkRequest,
  type FunctionRecord, type HostRecord, type JobEvent, type JobEventKind, type JobSpec, type Logger, type Message, type MessageKind, type ParentKey, type StoredJob, type WireError,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { isWarmOn } from '../planning/host-states.js';
import { jobParentHosts, spreadClones } from '../planning/job-hosts.js';
import { initialMemoryOf } from '../planning/memory-room.js';
import { JobEventWriter } from './job-event-writer.js';
import type { JobStore } from './job-store.js';
import { refusedResults } from './refused-results.js';

/** Failures that are the guest's own; anything else (a lost host, a page server gone) is retried without counting. */
const GUEST_FAILURES = new Set<ErrorCode>(['guest_trap', 'guest_error', 'output_limit', 'timeout']);
/** Attempts of one clone lost to the platform before the job gives up on it. */
const MAX_PLATFORM_ATTEMPTS = 8;
/** Time a clone may take to start (queue, memory) on top of its own time limit. */
const START_GRACE_MS = 30_000;
/** How long a host whose fork request failed gets no new clones. */
const HOST_BACKOFF_MS = 3000;
/** How often a run reads the streams for results its subscriptions missed (a safety net: outages are caught at once). */
const READ_STORED_MS = 10_000;
/**
 * How long a job whose clones were all heard done waits for their results to
 * be in the results stream: longer than a stream leader's election on a nats
 * cluster plus a host's publish timeout and retry.
 */
const RESULTS_STORED_WAIT_MS = 20_000;

export interface JobRunDeps {
  store: JobStore;
  fleet: FleetView;
  log: Logger;
  /** Clones each host runs for all jobs of this coordinator now. */
  inFlight: Map<string, number>;
  /** Hosts whose last fork request failed, and until when to skip them. */
  hostBackoff: Map<string, number>;
  /**
   * Where this coordinator last asked for a kept parent, by ParentKey string:
   * jobs with the same key go there (and share it) even before the host
   * advertises the parent in its record.
   */
  parentHosts: Map<string, string>;
  snapshotTimeoutMs: number;
  /** Tick period. */
  tickMs: number;
  getFunction(tenant: string, name: string): Promise<FunctionRecord>;
}

interface Running {
  host: string;
  /** The host's incarnation the clone went to: a host restarted since has lost it. */
  incarnation?: number;
  requestId: string;
  deadline: number;
}

export class JobRun {
  private spec!: JobSpec;
  private descriptor?: Uint8Array;
  private readonly running = new Map<number, Running>();
  /** Every attempt sent, by index: request id -> host. Only their results count. */
  private readonly sent = new Map<number, Map<string, string>>();
  /** Guest failures and platform losses, by index. */
  private readonly guestFailures = new Map<number, number>();
  private readonly platformLosses = new Map<number, number>();
  /** Hosts that have (or had) clones of the current snapshot, and so its pages. */
  private readonly hostsWithPages = new Set<string>();
  private readonly subs: Subscription[] = [];
  /** Object names of clone inputs too large to send in a fork request. */
  private readonly inputObjects = new Map<number, string>();
  private stopped = false;
  private dirty = false;
  private lastPersist = 0;
  private persisting: Promise<void> = Promise.resolve();
  private wake?: () => void;
  private dispatchSeq = 0;
  /** Writes this run's events in order (emit). */
  private events?: JobEventWriter;
  /** Broker outages this run has caught up with (afterOutage), and when it last read the streams. */
  private outagesSeen: number;
  private lastRead = Date.now();
  private snapshotting = false;
  private finishing = false;
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private readonly deps: JobRunDeps,
    private stored: StoredJob,
  ) {
    this.finished = new Promise((r) => (this.resolveFinished = r));
    this.outagesSeen = deps.store.fabric.link.outages;
  }

  get record() {
    return this.stored.record;
  }

  private get log(): Logger {
    return this.deps.log;
  }

  private get nc() {
    return this.deps.store.fabric.nc;
  }

  /** Stops driving the job (the lease was lost, or the gateway stops); nothing is changed. */
  stop(): void {
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
    for (const r of this.running.values()) this.release(r.host);
    this.running.clear();
    this.wake?.();
  }

  async run(): Promise<void> {
    try {
      let resumed = false;
      while (!this.stopped && !this.terminal()) {
        const link = this.deps.store.fabric.link;
        const outagesBefore = link.outages;
        try {
          if (!resumed) {
            await this.resume();
            resumed = true;
          } else await this.step();
        } catch (err) {
          // The broker went away in the middle of a step: try again once it is back, never fail the job for it.
          if (link.connected && link.outages === outagesBefore && !isBrokerFailure(err)) throw err;
          this.log.warn({ jobId: this.record.id, err: (err as Error).message }, `job ${resumed ? 'step' : 'resume'} interrupted by a broker outage; it runs again`);
        }
        this.persistSoon();
        if (this.terminal() || this.stopped) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.deps.tickMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    } catch (err) {
      if (!this.stopped && !this.terminal()) {
        this.log.error({ jobId: this.record.id, err: (err as Error).message }, 'job failed unexpectedly');
        await this.fail(toWireError(err));
      }
    } finally {
      for (const s of this.subs) s.unsubscribe();
      for (const r of this.running.values()) this.release(r.host);
      this.running.clear();
      await this.persisting;
      if (this.dirty && !this.stopped) await this.persistLast();
      this.resolveFinished();
    }
  }

  /**
   * The run's last record (the job ended) was not stored (its stream was
   * electing a leader): it is written again until stored, as nothing else
   * would (no later step writes it, and the stored record says the job runs).
   */
  private async persistLast(): Promise<void> {
    await untilStored(this.deps.store.fabric.link, async () => {
      await this.persistNow();
      if (this.dirty) throw new Error('the job record was not stored');
    }, { stopped: () => this.stopped }).catch((err: unknown) => {
      this.log.error({ jobId: this.record.id, state: this.record.state, err: (err as Error).message }, 'the job\'s last record could not be stored');
    });
  }

  /** `boot: "cold"`: no parent; every clone boots from the module and runs init itself. */
  private get cold(): boolean {
    return this.spec?.boot === 'cold';
  }

  /** Whether the parent outlives the job for later jobs with the same key (docs/jobs.md, "Kept parents"). */
  private get keepParent(): boolean {
    return !this.cold && this.spec?.keepParent !== false;
  }

  private parentKey(): ParentKey {
    return { tenant: this.record.tenant, moduleDigest: this.record.digest, initDigest: initDigest(this.spec.init, this.spec.initData) };
  }

  /** The id the hosts know this job's clones by: the snapshot's, or the cold boot's. */
  private get bootId(): string | undefined {
    return this.cold ? `cold.${this.record.id}` : this.record.snapshotId;
  }

  private terminal(): boolean {
    return TERMINAL_JOB_STATES.includes(this.record.state);
  }

  /** Reads what the store knows: the spec, results already kept, clones that were running. */
  private async resume(): Promise<void> {
    const { store } = this.deps;
    const { tenant, id } = this.record;
    // A message that is not one is dropped (checked-decode.ts counts and logs it).
    const reading = <K extends MessageKind>(kind: K, handle: (m: Message<K>) => void) => (_e: unknown, m: { data: Uint8Array; subject: string }) => {
      const message = decodeChecked(kind, m.data, m.subject);
      if (!message) return;
      try {
        handle(message);
      } catch (err) {
        this.log.warn({ jobId: id, kind, err: (err as Error).message }, 'message handler failed');
      }
    };
    // Once, even when a broker outage makes the rest of resume run again.
    if (this.subs.length === 0) this.subs.push(
      this.nc.subscribe(`${JobSubjects.results(tenant, id)}.*`, { callback: reading('CloneResult', (r) => this.onResult(r)) }),
      this.nc.subscribe(`${JobSubjects.failures(tenant, id)}.>`, { callback: reading('CloneResult', (r) => this.onFailure(r)) }),
      this.nc.subscribe(JobSubjects.progress(tenant, id), { callback: reading('CloneProgress', (p) => this.onProgress(p)) }),
    );
    await this.nc.flush();
    this.spec = await store.spec(this.stored);
    // Inputs too large for a fork message go through the object store, once per job (again on resume: same bytes).
    if (this.spec.input.length >= LARGE_JOB_DATA_BYTES) {
      await store.putBlob(`${tenant}/${id}/input`, this.spec.input);
      for (let i = 0; i < this.record.clones; i++) this.inputObjects.set(i, `${tenant}/${id}/input`);
    }
    for (const [i, input] of (this.spec.inputs ?? []).entries()) {
      if (input.length < LARGE_JOB_DATA_BYTES) continue;
      await store.putBlob(`${tenant}/${id}/inputs/${i}`, input);
      this.inputObjects.set(i, `${tenant}/${id}/inputs/${i}`);
    }
    if (this.cold) this.descriptor = encodeDescriptor(coldBootDescriptor({ bootId: `cold.${id}`, tenant, function: this.record.function, moduleDigest: this.record.digest }));
    else if (this.record.snapshotId) this.descriptor = (await store.getBlob(`${tenant}/${id}/descriptor/${this.record.snapshotId}`)) ?? undefined;
    if (!this.descriptor) this.record.snapshotId = undefined;
    // The attempts running when the last coordinator stopped may still deliver their results.
    for (const [index, requestId] of Object.entries(this.stored.dispatch ?? {})) {
      const host = this.record.clonesDetail[Number(index)]?.host;
      if (host) this.noteSent(Number(index), requestId, host);
    }
    await this.readStoredResults();
    // Clones that were running when the last coordinator stopped are forked again: a failure they
    // reported meanwhile is lost, so waiting for them could take their whole time limit. If the
    // old attempt finishes first, its result is the one kept (the stream keeps one per index).
    for (const c of this.record.clonesDetail) if (c.state === 'running') c.state = 'pending';
    this.stored.dispatch = {};
    if (this.record.parentHost) this.hostsWithPages.add(this.record.parentHost);
    for (const c of this.record.clonesDetail) if (c.host && c.state !== 'done') this.hostsWithPages.add(c.host);
    this.dirty = true;
    if (this.stored.cancelRequested && !this.terminal()) await this.cancel();
  }

  /** Results the stream keeps that this run has not counted yet (stored while its subscription could not hear them). */
  private async readStoredResults(): Promise<void> {
    const { store } = this.deps;
    const { tenant, id } = this.record;
    this.lastRead = Date.now();
    for (const index of await store.finishedIndexes(tenant, id)) {
      if (this.record.clonesDetail[index]?.state === 'done') continue;
      const r = await store.result(tenant, id, index);
      if (r) this.onResult(r);
    }
    if (this.running.size === 0) return;
    for (const f of await store.failedAttempts(tenant, id)) {
      if (this.running.get(f.index)?.requestId !== f.requestId) continue;
      const r = await store.failure(f.subject);
      if (r) this.onFailure(r);
    }
  }

  /**
   * The broker was away: nothing could be judged meanwhile (no heartbeat, no
   * result could reach this run), so running clones get the outage's time
   * back and what the hosts stored meanwhile is read from the streams.
   */
  private async afterOutage(): Promise<void> {
    const link = this.deps.store.fabric.link;
    this.outagesSeen = link.outages;
    const outageMs = Math.max(0, link.lastUpAt - link.lastDownAt);
    for (const r of this.running.values()) r.deadline += outageMs;
    this.log.info({ jobId: this.record.id, outageMs, running: this.running.size }, 'broker back; reading results stored meanwhile');
    await this.readStoredResults();
  }

  private async step(): Promise<void> {
    const link = this.deps.store.fabric.link;
    if (!link.connected) return;
    if (link.outages !== this.outagesSeen) await this.afterOutage();
    else if (Date.now() - this.lastRead > READ_STORED_MS) await this.readStoredResults();
    const live = this.liveHosts();
    const liveIds = new Set(live.map((h) => h.id));
    // A lost parent: its snapshot is gone; clones that need its pages cannot finish.
    if (this.record.snapshotId && this.record.parentHost && this.parentLost(liveIds)) {
      this.log.warn({ jobId: this.record.id, hostId: this.record.parentHost, snapshotId: this.record.snapshotId }, 'parent host lost; snapshotting again');
      const old = this.record.snapshotId;
      const others = [...this.hostsWithPages].filter((h) => liveIds.has(h));
      for (const [index, r] of [...this.running]) this.lose(index, r, 'parent host lost');
      this.record.snapshotId = undefined;
      this.record.parentHost = undefined;
      this.descriptor = undefined;
      this.hostsWithPages.clear();
      void this.releaseOn(others, old, true, this.record.id);
    }
    // Clones on hosts that stopped heartbeating go elsewhere; clones past their deadline failed.
    const now = Date.now();
    for (const [index, r] of [...this.running]) {
      if (!liveIds.has(r.host)) this.lose(index, r, `host ${r.host} lost`);
      else if (r.incarnation !== undefined && this.deps.fleet.incarnation(r.host) !== r.incarnation) this.lose(index, r, `host ${r.host} restarted`);
      else if (now > r.deadline) this.failAttempt(index, { code: 'timeout', message: `clone ${index} did not finish within ${this.spec.timeoutMs} ms` });
    }
    const details = this.record.clonesDetail;
    if (details.every((c) => c.state === 'done' || c.state === 'failed')) {
      if (this.finishing) return;
      this.finishing = true;
      try {
        if (details.some((c) => c.state === 'failed')) await this.failWithClones();
        else await this.complete();
      } catch (err) {
        // Interrupted (a broker outage): the next step finishes it.
        this.finishing = false;
        throw err;
      }
      return;
    }
    if (!this.descriptor) {
      await this.snapshot(live);
      if (!this.descriptor) return;
    } else if (this.record.state === 'queued') {
      this.record.startedAt ??= Date.now();
      this.setState('running');
    }
    this.dispatch(this.usableHosts(live));
  }

  /** The parent's host is gone, or restarted (a new incarnation has none of the old one's snapshots). */
  private parentLost(liveIds: Set<string>): boolean {
    const host = this.record.parentHost;
    if (host === undefined || !liveIds.has(host)) return true;
    return this.stored.parentIncarnation !== undefined && this.deps.fleet.incarnation(host) !== this.stored.parentIncarnation;
  }

  private liveHosts(): HostRecord[] {
    return this.deps.fleet.live().filter((h) => !h.draining);
  }

  /** Live hosts not resting after a failed fork request (a host that died shows as live until its record goes stale). */
  private usableHosts(live: HostRecord[]): HostRecord[] {
    const now = Date.now();
    return live.filter((h) => (this.deps.hostBackoff.get(h.id) ?? 0) <= now);
  }

  private freeSlots(h: HostRecord): number {
    return h.guestSlots - (this.deps.inFlight.get(h.id) ?? 0);
  }

  /**
   * Boots the parent on the best host: one keeping a parent with the job's
   * key first (it is reused: no init, no new snapshot), then the function
   * warm there, then most free slots.
   */
  private async snapshot(live: HostRecord[]): Promise<void> {
    if (this.snapshotting) return;
    this.snapshotting = true;
    try {
      const fn = await this.deps.getFunction(this.record.tenant, this.record.function).catch(() => undefined);
      const key = this.parentKey();
      const keyString = parentKeyString(key);
      const keeps = (h: HostRecord) => !this.keepParent ? 0
        : h.parents?.some((p) => p.tenant === key.tenant && p.moduleDigest === key.moduleDigest && p.initDigest === key.initDigest) ? 2
        : this.deps.parentHosts.get(keyString) === h.id ? 1 : 0;
      const candidates = jobParentHosts(live, { keeps, warm: (h) => fn !== undefined && isWarmOn(h, fn), bytes: initialMemoryOf(fn), freeSlots: (h) => this.freeSlots(h) });
      if (candidates.length === 0) {
        this.log.warn({ jobId: this.record.id }, 'no live host for the parent; waiting');
        return;
      }
      this.setState('snapshotting');
      this.record.startedAt ??= Date.now();
      let lastError: WireError | undefined;
      const link = this.deps.store.fabric.link;
      const outagesBefore = link.outages;
      for (const host of candidates) {
        this.emit('placed', { host: host.id });
        if (this.keepParent) rememberParentHost(this.deps.parentHosts, keyString, host.id);
        try {
          const made = await requestSnapshot(this.nc, host.id, {
            requestId: this.record.id, tenant: this.record.tenant, name: this.record.function, digest: this.record.digest,
            initInput: this.spec.init, initData: this.spec.initData, keep: this.keepParent,
          }, this.deps.snapshotTimeoutMs);
          if (this.stopped || this.terminal()) {
            void this.releaseOn([host.id], made.snapshotId, false, this.record.id);
            return;
          }
          await this.deps.store.putBlob(`${this.record.tenant}/${this.record.id}/descriptor/${made.snapshotId}`, made.descriptor);
          this.descriptor = made.descriptor;
          this.record.snapshotId = made.snapshotId;
          this.record.parentHost = host.id;
          this.stored.parentIncarnation = this.deps.fleet.incarnation(host.id);
          this.record.parentReused = made.reused === true;
          this.record.initMs = Math.round(made.initMs);
          this.record.snapshotMs = Math.round(made.snapshotMs);
          this.hostsWithPages.add(host.id);
          this.setState('running');
          this.emit('snapshot', { host: host.id, snapshotId: made.snapshotId, initMs: made.initMs, snapshotMs: made.snapshotMs, reused: made.reused === true });
          await this.persistNow();
          return;
        } catch (err) {
          // Cut off by a broker outage: the next step asks again (a parent made meanwhile is kept and reused).
          if (!link.connected || link.outages !== outagesBefore) throw err;
          lastError = toWireError(err);
          this.log.warn({ jobId: this.record.id, hostId: host.id, err: lastError.message }, 'snapshot failed');
          // A parent whose init fails fails everywhere.
          if (err instanceof FlurryError && GUEST_FAILURES.has(err.code)) break;
        }
      }
      await this.fail({ code: lastError?.code ?? 'unavailable', message: `the parent could not be started: ${lastError?.message}` });
    } finally {
      this.snapshotting = false;
    }
  }

  /** Sends pending clones to hosts with free slots, hosts holding the snapshot's pages first. */
  private dispatch(live: HostRecord[]): void {
    const pending = this.record.clonesDetail.filter((c) => c.state === 'pending').map((c) => c.index);
    if (pending.length === 0 || !this.descriptor) return;
    // Hosts that cache the snapshot's pages: this job's, and (for a kept parent) earlier jobs' clone hosts.
    const snapshotId = this.record.snapshotId;
    const hasPages = (h: HostRecord) => this.hostsWithPages.has(h.id) || (snapshotId !== undefined && h.pageCaches?.includes(snapshotId) === true);
    // Round by round, one clone per host with a free slot, so clones spread over the fleet.
    for (const [host, indices] of spreadClones(pending, live, hasPages, (h) => this.freeSlots(h))) this.fork(host, indices);
  }

  private fork(host: string, indices: number[]): void {
    const { tenant, id } = this.record;
    // Unguessable: a result counts only with the request id of an attempt sent for its index (onResult).
    const requestId = `${id}.${++this.dispatchSeq}.${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
    const deadline = Date.now() + this.spec.timeoutMs + START_GRACE_MS;
    this.stored.dispatch ??= {};
    for (const index of indices) {
      const c = this.record.clonesDetail[index];
      c.state = 'running';
      c.host = host;
      c.attempts++;
      this.stored.dispatch[index] = requestId;
      this.noteSent(index, requestId, host);
      this.track(index, { host, incarnation: this.deps.fleet.incarnation(host), requestId, deadline });
    }
    this.hostsWithPages.add(host);
    this.dirty = true;
    const req: ForkRequest = {
      requestId,
      descriptor: this.descriptor!,
      clones: indices.map((index) => ({ index, input: this.inputObjects.has(index) ? new Uint8Array(0) : (this.spec.inputs?.[index] ?? this.spec.input) })),
      count: this.record.clones,
      resultSubject: JobSubjects.results(tenant, id),
      objects: {
        store: JobObjects,
        inputs: Object.fromEntries(indices.filter((i) => this.inputObjects.has(i)).map((i) => [i, this.inputObjects.get(i)!])),
        outputPrefix: `${tenant}/${id}/out`,
        minOutputBytes: LARGE_JOB_DATA_BYTES,
      },
      perIndexResults: true,
      failSubject: JobSubjects.attemptFailures(tenant, requestId),
      progressSubject: JobSubjects.progress(tenant, id),
      prefetch: !this.cold && host !== this.record.parentHost,
      timeoutMs: this.spec.timeoutMs,
      ...this.coldBoot(),
    };
    const t0 = performance.now();
    // A broker outage before the host's answer leaves it unknown whether the host has the clones: they
    // are forked again (the first result per index is kept) rather than waited for until their deadline.
    const outage = this.deps.store.fabric.link.nextOutage();
    Promise.race([this.nc.request(Subjects.fork(host), encode(req), { timeout: this.spec.timeoutMs + START_GRACE_MS }), outage.outage]).then(
      (m) => {
        const reply = decodeChecked('ForkReply', m.data, m.subject) ?? { ok: false, error: { code: 'internal', message: `host ${host} answered the fork with a malformed reply` } };
        if (reply.ok) this.emit('forked', { host, indices, runningMs: Math.round(performance.now() - t0), pager: reply.pager });
        else this.forkFailed(host, requestId, indices, reply.error.message);
      },
      (err: Error) => this.forkFailed(host, requestId, indices, err.message, !this.deps.store.fabric.link.connected),
    ).finally(() => outage.cancel());
  }

  /** What a fork request of a cold job adds: boot each clone from the module with the job's init input. */
  private coldBoot(): Pick<ForkRequest, 'mode' | 'initInput' | 'initData'> {
    return this.cold ? { mode: 'cold', initInput: this.spec.init, initData: this.spec.initData } : {};
  }

  /** `outage`: the broker, not the host, failed the request: the host is not rested. */
  private forkFailed(host: string, requestId: string, indices: number[], message: string, outage = false): void {
    if (this.stopped || this.terminal()) return;
    this.log.warn({ jobId: this.record.id, hostId: host, requestId, err: message }, 'fork request failed');
    if (!outage) this.deps.hostBackoff.set(host, Date.now() + HOST_BACKOFF_MS);
    for (const index of indices) {
      const r = this.running.get(index);
      if (r?.requestId === requestId) this.lose(index, r, `fork on ${host} failed: ${message}`);
    }
    this.wake?.();
  }

  private noteSent(index: number, requestId: string, host: string): void {
    let attempts = this.sent.get(index);
    if (!attempts) this.sent.set(index, (attempts = new Map()));
    attempts.set(requestId, host);
  }

  /** Whether `r` is the result of an attempt this job sent for its index to the host it names; counts and drops it if not. */
  private fromSentAttempt(r: CloneResult): boolean {
    const host = this.sent.get(r.index)?.get(r.requestId);
    if (host !== undefined && host === r.hostId) return true;
    refusedResults.note(this.log, this.record.id, r, host === undefined ? 'no such attempt was sent for this index' : `the attempt was sent to ${host}`);
    void this.deps.store.dropResult(this.record.tenant, this.record.id, r.index, r.requestId).catch((err: unknown) => {
      this.log.warn({ jobId: this.record.id, index: r.index, err: (err as Error).message }, 'a refused result could not be dropped from the results stream');
    });
    return false;
  }

  private track(index: number, r: Running): void {
    this.running.set(index, r);
    this.deps.inFlight.set(r.host, (this.deps.inFlight.get(r.host) ?? 0) + 1);
  }

  private release(host: string): void {
    const n = (this.deps.inFlight.get(host) ?? 1) - 1;
    if (n <= 0) this.deps.inFlight.delete(host);
    else this.deps.inFlight.set(host, n);
  }

  private untrack(index: number): Running | undefined {
    const r = this.running.get(index);
    if (r) {
      this.running.delete(index);
      this.release(r.host);
      if (this.stored.dispatch) delete this.stored.dispatch[index];
    }
    return r;
  }

  /** A clone lost to the platform: run it again, without counting it against its retries. */
  private lose(index: number, r: Running, why: string): void {
    if (this.running.get(index) !== r) return;
    this.untrack(index);
    this.log.info({ jobId: this.record.id, index, hostId: r.host, why }, 'clone lost; forking it again');
    this.platformLoss(index, r.host, why);
  }

  /** A clone to run again (or, lost too often, failed): not the guest's fault and not counted against its retries. */
  private platformLoss(index: number, host: string | undefined, why: string): void {
    const c = this.record.clonesDetail[index];
    const losses = (this.platformLosses.get(index) ?? 0) + 1;
    this.platformLosses.set(index, losses);
    if (losses >= MAX_PLATFORM_ATTEMPTS) {
      c.state = 'failed';
      c.error = { code: 'unavailable', message: `clone ${index} was lost ${losses} times: ${why}` };
      this.emit('clone.failed', { index, host, error: c.error, final: true });
    } else {
      c.state = 'pending';
      // Said, so that why is never a mystery.
      this.emit('clone.lost', { index, host, reason: why });
    }
    this.dirty = true;
  }

  /**
   * Clones heard done whose result never reached the results stream (heard
   * from a host that died before its publish was stored, or from a stream
   * leader lost before it stored it): run again, as clones lost to the
   * platform, counted against the same limit.
   */
  private rerunUnstored(indexes: number[]): void {
    const why = `its result was heard but not stored in ${ResultsStream} within ${RESULTS_STORED_WAIT_MS} ms`;
    for (const index of indexes) {
      const host = this.record.clonesDetail[index]?.host;
      this.log.warn({ jobId: this.record.id, index, hostId: host }, `clone ${why}; forking it again`);
      this.platformLoss(index, host, why);
    }
  }

  private failAttempt(index: number, error: WireError, host?: string): void {
    this.untrack(index);
    const c = this.record.clonesDetail[index];
    const failures = (this.guestFailures.get(index) ?? 0) + 1;
    this.guestFailures.set(index, failures);
    c.error = error;
    const final = failures > this.spec.retries;
    c.state = final ? 'failed' : 'pending';
    this.dirty = true;
    this.emit('clone.failed', { index, host: host ?? c.host, attempt: c.attempts, error, final });
    this.wake?.();
  }

  private onResult(r: CloneResult): void {
    if (this.stopped || this.terminal()) return;
    const c = this.record.clonesDetail[r.index];
    if (!c || c.state === 'done' || !r.ok) return;
    if (!this.fromSentAttempt(r)) return;
    this.untrack(r.index);
    c.state = 'done';
    c.host = r.hostId;
    c.startMs = r.startMs;
    c.runMs = r.runMs;
    c.pages = r.pages;
    c.error = undefined;
    this.record.pagesFetched += r.pages.unicast + r.pages.multicast;
    this.dirty = true;
    this.emit('clone.done', { index: r.index, host: r.hostId, startMs: r.startMs, runMs: r.runMs, pages: r.pages });
    this.wake?.();
  }

  private onFailure(r: CloneResult): void {
    if (this.stopped || this.terminal()) return;
    const running = this.running.get(r.index);
    // A failure of an attempt that is no longer current (lost, timed out, already retried) changes nothing.
    if (!running || running.requestId !== r.requestId) return;
    const error = r.error ?? { code: 'internal', message: 'clone failed' };
    if (GUEST_FAILURES.has(error.code)) this.failAttempt(r.index, error, r.hostId);
    else {
      this.lose(r.index, running, error.message);
      this.wake?.();
    }
  }

  private onProgress(p: CloneProgress): void {
    if (this.stopped || this.terminal()) return;
    if (this.running.get(p.index)?.requestId !== p.requestId) return;
    this.emit('progress', { index: p.index, done: p.done, total: p.total, host: p.hostId });
  }

  /** All clones done: reduce when asked, release the snapshot everywhere, done. */
  private async complete(): Promise<void> {
    const { tenant, id } = this.record;
    const unkept = await this.deps.store.unkeptResults(tenant, id, this.record.clones, RESULTS_STORED_WAIT_MS);
    if (unkept.missing.length > 0 && unkept.full) {
      const which = `${unkept.missing.slice(0, 8).join(', ')}${unkept.missing.length > 8 ? ', …' : ''}`;
      await this.fail({ code: 'storage_full', message: `the results of clones ${which} were not kept: the results stream ${ResultsStream} is full (its limit is FLURRY_STORE_MAX_BYTES)` });
      return;
    }
    if (unkept.missing.length > 0) {
      this.rerunUnstored(unkept.missing);
      this.finishing = false;
      return;
    }
    if (this.spec.reduce) {
      this.setState('reducing');
      await this.persistNow();
      const outputs: Uint8Array[] = [];
      for (let i = 0; i < this.record.clones; i++) {
        const r = await this.deps.store.result(tenant, id, i);
        if (!r?.output) throw new FlurryError('internal', `the result of clone ${i} is missing from the results stream`);
        outputs.push(r.output);
      }
      let reduced: Uint8Array | undefined;
      let lastError: WireError | undefined;
      for (let attempt = 0; attempt <= this.spec.retries && !reduced; attempt++) {
        if (!this.cold && (!this.record.snapshotId || this.parentLost(new Set(this.liveHosts().map((h) => h.id))))) {
          this.record.snapshotId = undefined;
          await this.snapshot(this.liveHosts());
          if (this.terminal()) return;
          if (!this.record.snapshotId) continue;
          this.setState('reducing');
        }
        const host = this.cold ? this.reduceHostCold() : this.record.parentHost;
        if (!host) {
          lastError = { code: 'unavailable', message: 'no live host to reduce on' };
          continue;
        }
        const link = this.deps.store.fabric.link;
        const outagesBefore = link.outages;
        try {
          reduced = await this.reduceOn(host, frameReduceInput(outputs));
        } catch (err) {
          // Cut off by a broker outage: not the reduce's fault; the next step reduces again.
          if (!link.connected || link.outages !== outagesBefore) throw err;
          lastError = toWireError(err);
          this.log.warn({ jobId: id, err: lastError.message }, 'reduce failed');
        }
        if (this.stopped) return;
      }
      if (this.terminal()) return;
      if (!reduced) {
        await this.fail({ code: lastError?.code ?? 'internal', message: `reduce failed: ${lastError?.message}` });
        return;
      }
      await this.deps.store.putBlob(`${tenant}/${id}/reduced`, reduced);
      this.emit('reduced', { bytes: reduced.length });
    }
    await this.releaseAll();
    if (this.terminal() || this.stopped) return;
    this.record.finishedAt = Date.now();
    this.setState('done');
    await this.persistNow();
    this.emit('done', { job: this.record });
  }

  /** A cold job's reduce boots its own instance: on the host with the most free slots. */
  private reduceHostCold(): string | undefined {
    return [...this.usableHosts(this.liveHosts())].sort((a, b) => this.freeSlots(b) - this.freeSlots(a) || a.id.localeCompare(b.id))[0]?.id;
  }

  private async reduceOn(host: string, framed: Uint8Array): Promise<Uint8Array> {
    const inbox = createInbox('flurry.reduce');
    const requestId = `${this.record.id}.reduce.${Date.now().toString(36)}`;
    const got = new Promise<CloneResult>((resolve) => {
      // The first message that is a CloneResult; anything else on the inbox is dropped.
      const sub = this.nc.subscribe(inbox, {
        callback: (_e, m) => {
          const r = decodeChecked('CloneResult', m.data, m.subject);
          if (!r) return;
          sub.unsubscribe();
          resolve(r);
        },
      });
      this.subs.push(sub);
    });
    await this.nc.flush();
    const { tenant, id } = this.record;
    const large = framed.length >= LARGE_JOB_DATA_BYTES;
    if (large) await this.deps.store.putBlob(`${tenant}/${id}/reduce-input`, framed);
    const req: ForkRequest = {
      requestId, descriptor: this.descriptor!, clones: [{ index: 0, input: large ? new Uint8Array(0) : framed }], count: this.record.clones,
      resultSubject: inbox, prefetch: false, entry: 'reduce', timeoutMs: this.spec.timeoutMs, ...this.coldBoot(),
      objects: { store: JobObjects, inputs: large ? { 0: `${tenant}/${id}/reduce-input` } : {}, outputPrefix: `${tenant}/${id}/reduce-out`, minOutputBytes: LARGE_JOB_DATA_BYTES },
    };
    const reply = decodeOrRefuse('ForkReply', (await this.nc.request(Subjects.fork(host), encode(req), { timeout: this.spec.timeoutMs + START_GRACE_MS })).data);
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    let timer: NodeJS.Timeout | undefined;
    // Its result goes to this inbox without being kept: one published during a broker outage is lost, so an outage ends the wait.
    const outage = this.deps.store.fabric.link.nextOutage();
    const r = await Promise.race([
      got,
      outage.outage,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new FlurryError('timeout', `reduce did not finish within ${this.spec.timeoutMs} ms`)), this.spec.timeoutMs + START_GRACE_MS))),
    ]).finally(() => {
      clearTimeout(timer);
      outage.cancel();
    });
    if (!r.ok) throw FlurryError.fromWire(r.error ?? { code: 'internal', message: 'reduce failed' });
    if (r.outputObject) return this.deps.store.objectOutput(this.record.tenant, this.record.id, r.outputObject);
    return r.output ?? new Uint8Array(0);
  }

  private async failWithClones(): Promise<void> {
    const failed = this.record.clonesDetail.filter((c) => c.state === 'failed');
    this.record.errors = failed.map((c) => ({ index: c.index, code: c.error?.code ?? 'internal', message: c.error?.message ?? 'failed' }));
    const first = failed[0].error ?? { code: 'internal' as const, message: 'failed' };
    await this.fail({ code: first.code, message: `${failed.length} of ${this.record.clones} clones failed; clone ${failed[0].index}: ${first.message}` });
  }

  private async fail(error: WireError): Promise<void> {
    if (this.terminal()) return;
    this.record.error = error;
    this.record.finishedAt = Date.now();
    this.setState('failed');
    for (const [index] of [...this.running]) this.untrack(index);
    await this.persistNow();
    this.emit('failed', { error, errors: this.record.errors, job: this.record });
    await this.releaseAll(true);
  }

  /** Cancels: stops the clones on every host, releases the snapshot, records the state. */
  async cancel(): Promise<void> {
    if (this.terminal()) return;
    this.stored.cancelRequested = true;
    this.record.finishedAt = Date.now();
    this.setState('cancelled');
    for (const [index] of [...this.running]) this.untrack(index);
    for (const c of this.record.clonesDetail) if (c.state === 'running') c.state = 'pending';
    await this.persistNow();
    this.emit('cancelled', { job: this.record });
    await this.releaseAll(true);
    this.wake?.();
  }

  /**
   * The job is over: its clones are stopped (when asked), and it lets go of
   * the snapshot. A kept parent is only released by this job (it stays for
   * later jobs, and the clone hosts keep its pages until its host frees it);
   * otherwise the parent and every host's pages of it are dropped.
   */
  private async releaseAll(stopClones = false): Promise<void> {
    const snapshotId = this.bootId;
    if (!snapshotId) return;
    const live = new Set(this.deps.fleet.live().map((h) => h.id));
    const parent = this.record.parentHost;
    const hosts = [...new Set([...this.hostsWithPages, ...(parent ? [parent] : [])])].filter((h) => live.has(h));
    if (!this.keepParent) {
      await this.releaseOn(hosts, snapshotId, stopClones, this.record.id);
      return;
    }
    if (stopClones) await this.cancelOn(hosts, snapshotId);
    if (parent && live.has(parent)) await this.releaseOn([parent], snapshotId, false, this.record.id);
  }

  /** Stops this job's clones of the snapshot on `hosts` (other jobs sharing a kept parent go on). */
  private async cancelOn(hosts: string[], snapshotId: string): Promise<void> {
    const body: CancelRequest = { tenant: this.record.tenant, snapshotId, jobId: this.record.id };
    await Promise.all(hosts.map(async (h) => {
      try {
        await this.nc.request(JobSubjects.cancel(h), encode(body), { timeout: 5000 });
      } catch (err) {
        this.log.warn({ jobId: this.record.id, hostId: h, snapshotId, err: (err as Error).message }, 'cancel failed');
      }
    }));
  }

  /** Releases the snapshot on `hosts` as `holder` (a kept parent stays for its other holders). */
  private async releaseOn(hosts: string[], snapshotId: string, stopClones: boolean, holder: string): Promise<void> {
    if (stopClones) await this.cancelOn(hosts, snapshotId);
    const body: ReleaseRequest = { tenant: this.record.tenant, snapshotId, holder };
    await Promise.all(hosts.map(async (h) => {
      try {
        await this.nc.request(Subjects.release(h), encode(body), { timeout: 10_000 });
      } catch (err) {
        this.log.warn({ jobId: this.record.id, hostId: h, snapshotId, err: (err as Error).message }, 'release failed');
      }
    }));
  }

  private setState(state: StoredJob['record']['state']): void {
    this.record.state = state;
    this.dirty = true;
  }

  /**
   * Stores an event in the job events stream, after the ones emitted before it (job-event-writer.ts);
   * never waits, never throws. `eventSeq` follows what is stored, so the record written next
   * tells the SSE route which events it reflects.
   */
  private emit(kind: JobEventKind, fields: Record<string, unknown>): void {
    const { tenant, id } = this.record;
    const event: JobEvent = { kind, at: Date.now(), tenant, jobId: id, ...fields };
    this.events ??= new JobEventWriter(this.nc, this.deps.store.fabric.link, this.log, (seq) => (this.stored.eventSeq = Math.max(this.stored.eventSeq ?? 0, seq)));
    this.events.append(event);
  }

  private persistSoon(): void {
    if (this.dirty && Date.now() - this.lastPersist > 250) void this.persistNow();
  }

  persistNow(): Promise<void> {
    if (this.stopped) return this.persisting;
    this.dirty = false;
    this.lastPersist = Date.now();
    const r = this.record;
    r.updatedAt = Date.now();
    r.counts = { done: 0, failed: 0, running: 0, pending: 0 };
    for (const c of r.clonesDetail) r.counts[c.state]++;
    const value = structuredClone(this.stored);
    this.persisting = this.persisting.then(() => this.deps.store.put(value)).catch((err: unknown) => {
      this.dirty = true;
      this.log.warn({ jobId: r.id, err: (err as Error).message }, 'job record write failed');
    });
    return this.persisting;
  }
}

/** Keys remembered by the coordinator: the most recent ones (a hint; hosts' records say where parents really are). */
const REMEMBERED_PARENT_HOSTS = 1024;

function rememberParentHost(m: Map<string, string>, key: string, host: string): void {
  m.delete(key);
  m.set(key, host);
  if (m.size > REMEMBERED_PARENT_HOSTS) m.delete(m.keys().next().value!);
}

export function newCloneDetails(count: number): CloneDetail[] {
  return Array.from({ length: count }, (_, index) => ({ index, state: 'pending', attempts: 0 }));
}
