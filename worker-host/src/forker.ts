/**
 * The host's side of fork: the snapshot, fork, release and cancel requests,
 * and the fleet's word that a parent was freed (served by host.ts).
 *
 *   snapshot   boot a parent with the init input, freeze it, describe it,
 *              start its memory server, answer with the descriptor
 *              (fork/parent-snapshots.ts).
 *   fork       make the snapshot's memory available here once (the parent's,
 *              or adopted through a page cache: fork/adopted-snapshots.ts);
 *              with no clones, answer then (adopted ahead of its fork:
 *              fork-client's adoptAhead); else for each clone index: make the clone (on_restore), report
 *              it running, run it (fork/clone-runner.ts), write its CloneResult
 *              (fork/result-delivery.ts).
 *   release    drop the parent or the cached pages, answer with what moved.
 *   cancel     stop the clones of a snapshot, or of one job (fork/running-forks.ts).
 *
 * Parents of jobs are kept after their last job (kept-parents.ts) and reused
 * by later jobs with the same module and init input; hosts that adopted a
 * snapshot keep its pages until its parent host announces that it freed it
 * (or, if that host is gone, until they have not used them for the idle time).
 */
import {
  decodeDescriptor, FlurryError, toWireError,
  type ForkReply, type ForkRequest, type KeptParent,
  type ReleaseReply, type ReleaseRequest, type ReplyOf, type SnapshotDescriptor, type SnapshotRequest, type TraceContext,
} from '@flurry/core';
import { checkSnapshotMatch, withDerivedRoutes } from './request-rights.js';
import { AdoptedSnapshots, type AdoptedSnapshotsDeps } from './fork/adopted-snapshots.js';
import { CloneRunner, type SharedSnapshot } from './fork/clone-runner.js';
import { TaskFeeds } from './fork/task-feeds.js';
import type { GuestLogPublisher } from './guest-log-publisher.js';
import { KeptOutputs } from './fork/kept-outputs.js';
import { ForkObjects } from './fork/objects.js';
import { ParentSnapshots } from './fork/parent-snapshots.js';
import { ResultDelivery } from './fork/result-delivery.js';
import { RunningForks } from './fork/running-forks.js';
import type { HostMetrics } from './metrics/host-metrics.js';

/** What the forker needs: what adopting snapshots needs (the connection, the pool, the pager, the budget), and the kept parents' limits. */
export interface ForkerDeps extends AdoptedSnapshotsDeps {
  /** Kept parents (docs/jobs.md): how long an idle one stays, and how many bytes of idle ones at most. */
  parentIdleMs: number;
  parentCacheBytes: number;
  metrics?: HostMetrics;
  /** Where what a job's clones logged goes (fork/clone-runner.ts). */
  guestLogs: GuestLogPublisher;
}

/** At most this many bytes of task outputs kept for reduces on this host (a BLAST job's are under 1 MB); the least recently used job's go first. */
const KEPT_OUTPUTS_MAX_BYTES = 256 * 1024 * 1024;
/** A job's kept outputs go after this long without use, released or not (a coordinator that died before the release). */
const KEPT_OUTPUTS_IDLE_MS = 10 * 60_000;

export class Forker {
  private readonly parents: ParentSnapshots;
  private readonly adopted: AdoptedSnapshots;
  private readonly running = new RunningForks();
  private readonly clones: CloneRunner;
  private readonly results: ResultDelivery;
  private readonly objects: ForkObjects;
  private readonly sweeper: NodeJS.Timeout;
  /** The task clones running here: their task server splits their ranges through them. */
  readonly taskFeeds = new TaskFeeds();
  /** Task outputs of this host's clones kept for their job's reduce here. */
  private readonly keptOutputs = new KeptOutputs(KEPT_OUTPUTS_MAX_BYTES, KEPT_OUTPUTS_IDLE_MS);

  constructor(private readonly deps: ForkerDeps) {
    this.objects = new ForkObjects(deps.nc, deps.link, deps.log);
    this.parents = new ParentSnapshots({ ...deps, objects: this.objects });
    this.adopted = new AdoptedSnapshots(deps);
    this.results = new ResultDelivery(deps.nc, deps.link, this.objects, deps.log);
    this.clones = new CloneRunner({ ...deps, objects: this.objects, results: this.results, taskFeeds: this.taskFeeds, keptOutputs: this.keptOutputs });
    this.sweeper = setInterval(() => {
      this.sweepPageCaches();
      this.keptOutputs.sweep();
    }, Math.min(30_000, Math.max(250, deps.parentIdleMs / 4)));
    this.sweeper.unref();
  }

  /** Kept parents, for the host record. */
  keptParents(): KeptParent[] {
    return this.parents.kept();
  }

  /** Snapshots whose pages this host caches, for the host record. */
  pageCaches(): string[] {
    return this.adopted.multicastSnapshotIds();
  }

  /** Answers a snapshot request (served on the host's snapshot subject). */
  snapshot(req: SnapshotRequest): Promise<ReplyOf<'snapshot'>> {
    return this.parents.snapshot(req);
  }

  /**
   * Answers a fork request (served on the host's fork subject) once every clone
   * is running or has failed to start; the clones run on after the answer.
   */
  fork(request: ForkRequest, trace?: TraceContext): Promise<ForkReply> {
    const received = performance.now();
    let req: ForkRequest;
    let descriptor: SnapshotDescriptor;
    try {
      descriptor = decodeDescriptor(request.descriptor);
      checkSnapshotMatch(descriptor, this.knownDescriptor(descriptor.snapshotId));
      req = withDerivedRoutes(request, descriptor);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'fork request refused');
      return Promise.resolve({ ok: false, error: { code: 'bad_request', message: (err as Error).message }, hostId: this.deps.hostId });
    }
    return new Promise((respond) => void this.startClones(req, descriptor, received, respond, trace));
  }

  private async startClones(req: ForkRequest, descriptor: SnapshotDescriptor, received: number, respond: (reply: ForkReply) => void, trace: TraceContext | undefined): Promise<void> {
    const log = this.deps.log.child({ requestId: req.requestId, snapshotId: descriptor.snapshotId, ...(trace ? { traceId: trace.traceId } : {}) });
    const fork = this.running.add(req.requestId, req.jobId, descriptor.snapshotId, req.clones.map((c) => c.index));
    let started = 0;
    let ended = 0;
    let preparedMs = 0;
    const allStarted = () => {
      if (++started !== req.clones.length) return;
      const phases = { receivedAt: performance.timeOrigin + received, preparedMs, runningMs: performance.now() - received };
      respond({ ok: true, hostId: this.deps.hostId, started, runningAt: Date.now(), pager: this.deps.pager ? 'userfaultfd' : 'portable', phases });
    };
    try {
      const mode = req.mode ?? 'lazy';
      const shared = mode === 'cold' || mode === 'eager' ? undefined : await this.prepare(descriptor, mode === 'unicast', req.prefetch);
      preparedMs = performance.now() - received;
      if (shared) fork.keys.add(shared.key);
      // Cold clones all run init with the same input: read uploaded data once for the request.
      if (mode === 'cold' && req.initData) req = { ...req, initInput: await this.objects.initInput(undefined, req.initData), initData: undefined };
      log.debug({ clones: req.clones.length, mode }, 'fork');
      const adopted = shared?.adopted;
      if (adopted) adopted.active += req.clones.length;
      for (const clone of req.clones) {
        void this.clones.run(req, descriptor, clone, shared, fork, received, allStarted).then(async (result) => {
          if (adopted) {
            adopted.active--;
            adopted.lastUsed = Date.now();
          }
          if (++ended === req.clones.length) this.running.remove(fork);
          // A clone that failed before it ever started still counts toward the reply.
          if (!result.ok && result.startMs < 0) allStarted();
          this.deps.metrics?.cloneEnded(result);
          // A task clone's results are its tasks', published as they ended: only its failure is left to say.
          if (!req.tasks || !result.ok) await this.results.finish(req, clone.index, result);
        });
      }
      if (req.clones.length === 0) {
        this.running.remove(fork);
        respond({ ok: true, hostId: this.deps.hostId, started: 0, runningAt: Date.now(), pager: this.deps.pager ? 'userfaultfd' : 'portable', phases: { receivedAt: performance.timeOrigin + received, preparedMs, runningMs: performance.now() - received } });
      }
    } catch (err) {
      this.running.remove(fork);
      log.warn({ err: (err as Error).message }, 'fork failed');
      respond({ ok: false, error: toWireError(err), hostId: this.deps.hostId });
    }
  }

  /** The descriptor of a snapshot this host holds the parent of or caches pages of. */
  private knownDescriptor(snapshotId: string): SnapshotDescriptor | undefined {
    return this.parents.get(snapshotId)?.descriptor ?? this.adopted.of(snapshotId)[0]?.descriptor;
  }

  /** Makes the snapshot's memory available on this host, once per snapshot: the parent's here, or adopted. */
  private async prepare(d: SnapshotDescriptor, unicast: boolean, prefetch: boolean): Promise<SharedSnapshot> {
    const parent = this.parents.get(d.snapshotId);
    if (parent) return { key: parent.key };
    const adopted = await this.adopted.prepare(d, unicast ? 'unicast' : 'multicast', prefetch);
    return { key: adopted.key, adopted };
  }

  /** A parent host freed a kept parent: its pages are no use any more. */
  parentFreed(req: ReleaseRequest): void {
    if (this.parents.get(req.snapshotId)) return;
    if (this.adopted.of(req.snapshotId).length > 0) {
      this.deps.log.debug({ snapshotId: req.snapshotId }, 'parent freed; dropping its cached pages');
      this.release(req.snapshotId);
    }
  }

  /** Page caches nobody used for the idle time (their parent host may be gone without a word). */
  private sweepPageCaches(): void {
    for (const snapshotId of this.adopted.idleSnapshotIds(this.deps.parentIdleMs)) this.release(snapshotId);
  }

  /**
   * Stops every clone of a snapshot on this host now, or only those of the fork
   * requests that named `jobId` (a cancelled job); the snapshot stays until released.
   */
  cancel(snapshotId: string, jobId?: string): boolean {
    const error = new FlurryError('unavailable', `snapshot ${snapshotId} was cancelled`);
    if (jobId !== undefined) {
      let stopped = false;
      for (const fork of this.running.of(snapshotId, jobId)) {
        for (const key of fork.keys) this.deps.pool.abort(key, error, fork.callIds);
        stopped ||= fork.keys.size > 0;
      }
      return stopped;
    }
    const keys = new Set<string>();
    const parent = this.parents.get(snapshotId);
    if (parent) keys.add(parent.key);
    for (const a of this.adopted.of(snapshotId)) keys.add(a.key);
    for (const fork of this.running.of(snapshotId)) for (const key of fork.keys) keys.add(key);
    for (const key of keys) this.deps.pool.abort(key, error);
    return keys.size > 0;
  }

  /**
   * Lets go of a snapshot here. A kept parent released by one of its holders
   * stays (idle once no holder is left); without a holder, or not kept, the
   * parent is freed now. Cached pages of the snapshot are dropped.
   */
  release(snapshotId: string, holder?: string, tenant?: string): ReleaseReply {
    const reply: ReleaseReply = { hostId: this.deps.hostId };
    // A job's release (its hold, by job id) ends its reduce here: the outputs kept for it go.
    if (holder !== undefined && tenant !== undefined) this.keptOutputs.drop(tenant, holder);
    const server = this.parents.release(snapshotId, holder);
    if (server) reply.server = server;
    const cache = this.adopted.dropAll(snapshotId);
    if (cache) reply.cache = cache;
    return reply;
  }

  /** Drops everything (host drain). */
  close(): void {
    this.results.close();
    clearInterval(this.sweeper);
    for (const id of new Set([...this.parents.snapshotIds(), ...this.adopted.snapshotIds()])) this.release(id);
  }
}
