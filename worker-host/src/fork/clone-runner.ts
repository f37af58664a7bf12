/**
 * Runs one clone of a fork: makes its memory (from the snapshot prepared for
 * the fork, or, for the cold and eager baselines, a snapshot of its own),
 * calls `run(index, count)` or `reduce(count)`, reports progress, and turns
 * what the guest did into its CloneResult (pages by source, fault wait).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { publishTo, toWireError, type BrokerLink, type CloneResult, type ForkRequest, type Logger, type PageCounts, type SnapshotDescriptor } from '@flurry/core';
import { GuestCallError, type CallResult, type GuestPool } from '../guest/guest-pool.js';
import type { GuestLogPublisher } from '../guest-log-publisher.js';
import { fetchModule } from '../module-store.js';
import { PageCache } from '../page-cache.js';
import type { AdoptedSnapshot } from './adopted-snapshots.js';
import type { ForkObjects } from './objects.js';
import type { ResultDelivery } from './result-delivery.js';
import type { KeptOutputs } from './kept-outputs.js';
import { TaskFeed } from './task-feed.js';
import type { TaskFeeds } from './task-feeds.js';
import { poolKey, type OwnBootMode } from './pool-keys.js';
import { cloneCallId, type RunningFork } from './running-forks.js';

/** The snapshot a fork's clones share on this host: the parent's, or an adopted one. */
export interface SharedSnapshot {
  key: string;
  adopted?: AdoptedSnapshot;
}

export interface CloneRunnerDeps {
  hostId: string;
  nc: NatsConnection;
  link: BrokerLink;
  modules: ObjectStore;
  objects: ForkObjects;
  pool: GuestPool;
  log: Logger;
  /** Where what a job's clones logged goes, for their owner. */
  guestLogs: GuestLogPublisher;
  /** Where a task clone's task results go. */
  results: ResultDelivery;
  /** The task clones running here, for their task server's splits. */
  taskFeeds: TaskFeeds;
  /** Task outputs kept for a job's reduce here. */
  keptOutputs: KeptOutputs;
}

export class CloneRunner {
  constructor(private readonly deps: CloneRunnerDeps) {}

  /**
   * Runs the clone and resolves with its result (never rejects). `onStarted`
   * is called once the clone is running; a clone that failed before it started
   * has `startMs` -1.
   */
  async run(
    req: ForkRequest,
    d: SnapshotDescriptor,
    clone: { index: number; input: Uint8Array },
    shared: SharedSnapshot | undefined,
    fork: RunningFork,
    received: number,
    onStarted: () => void,
  ): Promise<CloneResult> {
    const { pool } = this.deps;
    const callId = cloneCallId(req.requestId, clone.index);
    let startMs = -1;
    const began = performance.now();
    let key = shared?.key;
    let ownKey: string | undefined;
    let feed: TaskFeed | undefined;
    try {
      const inputObject = req.objects?.inputs?.[clone.index];
      if (inputObject) clone = { index: clone.index, input: await this.deps.objects.cloneInput(req.objects!.store, inputObject) };
      if (!key) {
        // Baselines: a clone of its own, booted cold or filled eagerly over unicast.
        const mode: OwnBootMode = req.mode === 'cold' ? 'cold' : 'eager';
        ownKey = poolKey({ kind: 'own', snapshotId: d.snapshotId, mode, requestId: req.requestId, index: clone.index });
        key = ownKey;
        fork.keys.add(ownKey);
        await this.bootOwn(ownKey, mode, req, d);
      }
      let result: CallResult;
      const started = () => {
        startMs = performance.now() - received;
        onStarted();
      };
      if (req.tasks) {
        const { jobId } = req;
        const keep = req.tasks.keepOutputs && jobId !== undefined
          ? (first: number, count: number, framed: Uint8Array) => this.deps.keptOutputs.keep(d.tenant, jobId, { requestId: req.requestId, first, count }, framed)
          : undefined;
        feed = new TaskFeed(this.deps, { ...req, tasks: req.tasks }, clone.index, () => (startMs >= 0 ? startMs : undefined), keep);
        this.deps.taskFeeds.add(feed);
        // The first batch is asked for while the thread makes the clone's instance.
        feed.askAhead();
        result = await pool.runTasks(key, req.tasks.count, clone.input, callId, feed, started, req.timeoutMs);
      } else if (req.entry === 'reduce') {
        // The runs of outputs this host's clones published, kept here, go in task order among the frames sent.
        const input = req.keptOutputs?.length ? this.deps.keptOutputs.reduceInput(d.tenant, req.jobId ?? '', req.keptOutputs, clone.input, req.count) : clone.input;
        startMs = performance.now() - received;
        onStarted();
        result = await pool.reduce(key, req.count, input, callId, req.timeoutMs);
      } else {
        const progressSubject = req.progressSubject;
        const onProgress = progressSubject
          ? (done: number, total: number) => publishTo(this.deps.nc, 'progress', progressSubject, { requestId: req.requestId, hostId: this.deps.hostId, index: clone.index, done, total })
          : undefined;
        result = await pool.run(key, clone.index, req.count, clone.input, callId, onProgress, started, req.timeoutMs);
      }
      this.publishLogs(req, d, clone.index, result);
      this.deps.log.debug({ requestId: req.requestId, index: clone.index, startMs, threadStartMs: result.startMs, restoreMs: result.memory?.restoreMs, spare: result.memory?.spare, faultWaitMs: result.memory?.faultWaitMs }, 'clone done');
      return this.result(req, clone.index, received, startMs, performance.now() - began, result, shared?.adopted);
    } catch (err) {
      if (err instanceof GuestCallError) this.publishLogs(req, d, clone.index, err);
      return {
        requestId: req.requestId, hostId: this.deps.hostId, index: clone.index, ok: false, error: toWireError(err), startMs, runMs: performance.now() - began,
        pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0, ...(feed?.current !== undefined && { task: feed.current }),
      };
    } finally {
      // Tasks finished before a clone's end (a time limit, a lost instance) count: sent before its own result.
      if (feed) {
        this.deps.taskFeeds.delete(feed);
        feed.sendFinished();
      }
      if (ownKey) {
        fork.keys.delete(ownKey);
        void pool.releaseSnapshot(ownKey);
      }
    }
  }

  /** A job's clone or reduce logs for the job's owner; a plain fork (tests, benchmarks) has no owner to read them. */
  private publishLogs(req: ForkRequest, d: SnapshotDescriptor, index: number, run: CallResult | GuestCallError): void {
    if (req.jobId === undefined) return;
    const source = req.entry === 'reduce' ? { kind: 'reduce' as const, jobId: req.jobId } : { kind: 'clone' as const, jobId: req.jobId, index };
    this.deps.guestLogs.publish(d.tenant, source, req.requestId, run);
  }

  private async bootOwn(key: string, mode: OwnBootMode, req: ForkRequest, d: SnapshotDescriptor): Promise<void> {
    const moduleBytes = await fetchModule(this.deps.modules, d.tenant, d.moduleDigest);
    if (mode === 'cold') {
      await this.deps.pool.warm(key, moduleBytes, req.initInput ?? new Uint8Array(0), req.requestId, d.tenant);
      return;
    }
    const cache = new PageCache({ nc: this.deps.nc, link: this.deps.link, hostId: this.deps.hostId, descriptor: d, unicast: true });
    try {
      await cache.fillAll();
      await this.deps.pool.adoptSnapshot(key, { moduleBytes, byteLength: d.memoryBytes, maximumPages: d.maximumPages, globals: d.globals, source: cache.source(), tenant: d.tenant });
    } finally {
      cache.close();
    }
  }

  private result(req: ForkRequest, index: number, received: number, startMs: number, runMs: number, r: CallResult, adopted?: AdoptedSnapshot): CloneResult {
    const m = r.memory;
    // The guest thread's times are on the epoch clock (the same in every thread); `received` is this thread's performance.now().
    const sinceReceived = (at: number | undefined) => (at === undefined ? undefined : Math.max(0, at - (performance.timeOrigin + received)));
    const pages: PageCounts = { local: 0, multicast: 0, unicast: 0, zero: m?.zeroPages ?? 0 };
    if (m?.mode === 'lazy') {
      // Pages a clone waited for were fetched for it; the rest were already on this host.
      const waited = m.pagesWaited;
      pages.local = Math.max(0, m.pagesFromStore - waited);
      const s = adopted?.cache.stats;
      if (s && s.chunksMulticast + s.chunksUnicast > 0) {
        const share = s.chunksMulticast / (s.chunksMulticast + s.chunksUnicast);
        pages.multicast = Math.round(waited * share);
        pages.unicast = waited - pages.multicast;
      } else pages.unicast = waited;
    }
    return {
      requestId: req.requestId, hostId: this.deps.hostId, index, ok: true, output: r.body, startMs, runMs, pages,
      faultWaitMs: m?.faultWaitMs ?? 0, progress: r.progress, createdMs: sinceReceived(m?.createdAt), firstFaultMs: sinceReceived(m?.firstFaultAt),
    };
  }
}
