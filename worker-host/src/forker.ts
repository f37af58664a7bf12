/**
 * The host's side of fork: snapshot a warm parent (and serve its memory),
 * and start clones of a snapshot, whether the parent lives here (copy-on-write
 * from its memory file) or on another host (lazy memory through a page cache).
 *
 *   snapshot   boot a parent with the init input, freeze it, describe it,
 *              start its memory server, answer with the descriptor.
 *   fork       for each clone index: make the clone (on_restore), report it
 *              running, run it, publish its CloneResult.
 *   release    drop the parent or the cached pages, answer with what moved.
 *
 * Parents of jobs are kept after their last job (kept-parents.ts) and reused
 * by later jobs with the same module and init input; hosts that adopted a
 * snapshot keep its pages until its parent host announces that it freed it
 * (or, if that host is gone, until they have not used them for the idle time).
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import {
  chunkCount, chunkRange, decodeChecked, decodeOrRefuse, decodeDescriptor, describeMemoryByPieces, isZeroChunk, JobOutputObjects, encode, encodeDescriptor, FlurryError, initDigest, newId, openExistingObjects, parentKeyString, PAGE_SIZE, DEFAULT_CHUNK_PAGES, readDataObject, Subjects, toWireError,
  type CancelReply, type CancelRequest, type InitDataRef, type KeptParent, type ParentKey, type CloneProgress, type CloneResult, type ForkReply, type ForkRequest, type Logger, type PageCounts, type ReleaseReply, type ReleaseRequest,
  type SnapshotDescriptor, type SnapshotReply, type SnapshotRequest, type BrokerLink, isStorageFull, publishResult, untilStored,
} from '@flurry/core';
import type { ObjectStore } from '@nats-io/obj';
import { checkDataRef, checkSnapshotMatch, withDerivedRoutes } from './request-rights.js';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { CallResult } from './guest/guest-pool.js';
import { MemoryServer } from './memory-server.js';
import { fetchModule } from './module-store.js';
import { PageCache } from './page-cache.js';
import type { NativePager } from './native/pager.js';
import { ParentKeeper } from './kept-parents.js';
import { GuestPool } from './guest/guest-pool.js';
import type { MemoryBudget } from './memory-budget.js';

interface ParentSnapshot {
  key: string;
  descriptor: SnapshotDescriptor;
  encoded: Uint8Array;
  server: MemoryServer;
}

interface AdoptedSnapshot {
  key: string;
  descriptor: SnapshotDescriptor;
  cache: PageCache;
  ready: Promise<void>;
  /** Clones running from it now, and when it was last used: an idle one is dropped after the idle time. */
  active: number;
  lastUsed: number;
}

type SnapshotMade = Extract<SnapshotReply, { ok: true }>;

export interface ForkerDeps {
  hostId: string;
  nc: NatsConnection;
  /** Whether the broker is reachable: stored results and page fetches wait for it. */
  link: BrokerLink;
  modules: ObjectStore;
  pool: GuestPool;
  /** The native pager when this host pages lazily; undefined for the portable pager. */
  pager?: NativePager;
  log: Logger;
  /** Kept parents (docs/jobs.md): how long an idle one stays, and how many bytes of idle ones at most. */
  parentIdleMs: number;
  parentCacheBytes: number;
  /** What the host advertises (kept parents, page caches) changed. */
  onChange?(): void;
  /** The host's memory budget: parents are admitted by the pool; page caches here; idle ones are evictable. */
  budget?: MemoryBudget;
}

const snapKey = (snapshotId: string) => `snap:${snapshotId}`;
/** A page cache's id in the memory budget. */
const pageCacheHolding = (cacheKey: string) => `pages:${cacheKey}`;

/** Bytes of the snapshot's chunks that are not all zeros: the most a page cache of it comes to hold. */
function nonZeroChunkBytes(d: SnapshotDescriptor): number {
  let bytes = 0;
  for (let c = 0; c < chunkCount(d); c++) {
    if (isZeroChunk(d, c)) continue;
    const { start, end } = chunkRange(d, c);
    bytes += end - start;
  }
  return bytes;
}

export class Forker {
  private readonly parents = new Map<string, ParentSnapshot>();
  private readonly adopted = new Map<string, AdoptedSnapshot>();
  /** Pool keys of clones booted on their own (cold, eager), by snapshot id, so a cancel reaches them. */
  private readonly ownBoots = new Map<string, Set<string>>();
  private readonly keeper: ParentKeeper;
  /** Parents being made for a ParentKey: a second job with the same key waits and shares. */
  private readonly making = new Map<string, Promise<SnapshotMade>>();
  private readonly sweeper: NodeJS.Timeout;
  /** Adoptions made, for pool keys that a new adoption never shares with one still being evicted. */
  private adoptions = 0;
  /** The host is exiting: results still being stored give up. */
  private closed = false;
  private readonly js: JetStreamClient;

  constructor(private readonly deps: ForkerDeps) {
    this.keeper = new ParentKeeper({
      idleMs: deps.parentIdleMs, cacheBytes: deps.parentCacheBytes, onChange: deps.onChange,
      free: (snapshotId) => this.freeParent(snapshotId),
    });
    this.js = jetstream(deps.nc);
    this.sweeper = setInterval(() => this.sweepPageCaches(), Math.min(30_000, Math.max(250, deps.parentIdleMs / 4)));
    this.sweeper.unref();
  }

  /** Kept parents, for the host record. */
  keptParents(): KeptParent[] {
    return this.keeper.list();
  }

  /** Snapshots whose pages this host caches, for the host record. */
  pageCaches(): string[] {
    return [...this.adopted.keys()].filter((k) => !k.includes('#'));
  }

  async onSnapshot(msg: Msg): Promise<void> {
    let reply: SnapshotReply;
    try {
      reply = await this.snapshot(decodeOrRefuse('SnapshotRequest', msg.data, msg.subject));
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  private async snapshot(req: SnapshotRequest): Promise<SnapshotMade> {
    checkDataRef(req.tenant, req.initData);
    if (!req.keep) return this.makeParent(req);
    const key: ParentKey = { tenant: req.tenant, moduleDigest: req.digest, initDigest: initDigest(req.initInput, req.initData) };
    const k = parentKeyString(key);
    for (;;) {
      const kept = this.keeper.find(key);
      const parent = kept === undefined ? undefined : this.parents.get(kept);
      if (kept !== undefined && parent) {
        this.keeper.hold(kept, req.requestId);
        this.deps.log.info({ requestId: req.requestId, snapshotId: kept, fn: `${req.tenant}/${req.name}` }, 'kept parent reused');
        return { ok: true, hostId: this.deps.hostId, snapshotId: kept, descriptor: parent.encoded, initMs: 0, snapshotMs: 0, reused: true };
      }
      const making = this.making.get(k);
      if (!making) break;
      await making.catch(() => undefined);
    }
    const making = this.makeParent(req);
    this.making.set(k, making);
    try {
      const made = await making;
      const d = this.parents.get(made.snapshotId)!.descriptor;
      this.keeper.add({ ...key, function: req.name, snapshotId: made.snapshotId, memoryBytes: d.memoryBytes }, req.requestId);
      return made;
    } finally {
      this.making.delete(k);
    }
  }

  private async makeParent(req: SnapshotRequest): Promise<SnapshotMade> {
    const { pool, log } = this.deps;
    const snapshotId = newId('snap');
    const key = snapKey(snapshotId);
    const [moduleBytes, initInput] = await Promise.all([fetchModule(this.deps.modules, req.tenant, req.digest), this.initInput(req.initInput, req.initData)]);
    const warm = await pool.warm(key, moduleBytes, initInput, req.requestId, req.tenant);
    // Only a kept parent that no job holds may go for room; a job's own parent is freed by its release.
    this.deps.budget?.evictable(GuestPool.snapshotHolding(key), {
      idleSince: () => this.keeper.idleSince(snapshotId),
      evict: () => {
        this.keeper.forget(snapshotId);
        this.freeParent(snapshotId);
      },
    });
    const t0 = performance.now();
    const image = pool.snapshotImage(key);
    const { zeroPages, chunkHashes } = describeMemoryByPieces((o, l) => image.read(o, l), image.byteLength, PAGE_SIZE, DEFAULT_CHUNK_PAGES);
    const descriptor: SnapshotDescriptor = {
      snapshotId, tenant: req.tenant, function: req.name, moduleDigest: req.digest,
      memoryBytes: image.byteLength, maximumPages: image.maximumPages, pageSize: PAGE_SIZE, chunkPages: DEFAULT_CHUNK_PAGES,
      globals: image.globals, zeroPages, chunkHashes, serverHostId: this.deps.hostId, createdAt: Date.now(),
    };
    const server = new MemoryServer(this.deps.nc, descriptor, (o, l) => image.read(o, l), this.deps.log);
    const encoded = encodeDescriptor(descriptor);
    this.parents.set(snapshotId, { key, descriptor, encoded, server });
    await this.deps.nc.flush();
    const snapshotMs = performance.now() - t0;
    log.info({ requestId: req.requestId, snapshotId, fn: `${req.tenant}/${req.name}`, memoryBytes: image.byteLength, initMs: warm.initMs, snapshotMs, keep: req.keep === true }, 'snapshot ready');
    return { ok: true, hostId: this.deps.hostId, snapshotId, descriptor: encoded, initMs: warm.initMs, snapshotMs };
  }

  /** A parent's init input: inline, or an uploaded data object read from its store (docs/api.md, "Job data"). */
  private async initInput(inline: Uint8Array | undefined, ref: InitDataRef | undefined): Promise<Uint8Array> {
    if (!ref) return inline ?? new Uint8Array(0);
    const t0 = performance.now();
    const bytes = await readDataObject(await this.objectStore(ref.store), ref);
    this.deps.log.debug({ data: ref.name, bytes: bytes.length, ms: performance.now() - t0 }, 'init data fetched');
    return bytes;
  }

  async onFork(msg: Msg): Promise<void> {
    const received = performance.now();
    let req: ForkRequest;
    let descriptor: SnapshotDescriptor;
    try {
      req = decodeOrRefuse('ForkRequest', msg.data, msg.subject);
      descriptor = decodeDescriptor(req.descriptor);
      checkSnapshotMatch(descriptor, this.knownDescriptor(descriptor.snapshotId));
      req = withDerivedRoutes(req, descriptor);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'fork request refused');
      msg.respond(encode({ ok: false, error: { code: 'bad_request', message: (err as Error).message }, hostId: this.deps.hostId } satisfies ForkReply));
      return;
    }
    const log = this.deps.log.child({ requestId: req.requestId, snapshotId: descriptor.snapshotId });
    let started = 0;
    let replied = false;
    const respond = (reply: ForkReply) => {
      if (replied) return;
      replied = true;
      msg.respond(encode(reply));
    };
    const allStarted = () => {
      if (++started === req.clones.length) respond({ ok: true, hostId: this.deps.hostId, started, runningAt: Date.now(), pager: this.deps.pager ? 'userfaultfd' : 'portable' });
    };
    try {
      const mode = req.mode ?? 'lazy';
      const prepared = mode === 'cold' || mode === 'eager' ? undefined : await this.prepare(descriptor, mode === 'unicast', req.prefetch);
      // Cold clones all run init with the same input: read uploaded data once for the request.
      if (mode === 'cold' && req.initData) req = { ...req, initInput: await this.initInput(undefined, req.initData), initData: undefined };
      log.debug({ clones: req.clones.length, mode }, 'fork');
      const adopted = prepared?.adopted;
      if (adopted) adopted.active += req.clones.length;
      for (const clone of req.clones) {
        void this.runClone(req, descriptor, clone, prepared, received, allStarted).then(async (result) => {
          if (adopted) {
            adopted.active--;
            adopted.lastUsed = Date.now();
          }
          // A clone that failed before it ever started still counts toward the reply.
          if (!result.ok && result.startMs < 0) allStarted();
          if (result.ok && req.objects?.outputPrefix && result.output && result.output.length >= (req.objects.minOutputBytes ?? 0)) {
            const name = `${req.objects.outputPrefix}/${clone.index}/${req.requestId}`;
            const output = result.output;
            try {
              // A full store stays full: the clone fails at once with storage_full instead of retrying for minutes.
              await untilStored(this.deps.link, async () => (await this.objectStore(JobOutputObjects)).putBlob({ name }, output), { stopped: () => this.closed, permanent: isStorageFull });
              result = { ...result, output: undefined, outputObject: name };
            } catch (err) {
              result = { ...result, ok: false, output: undefined, error: { code: isStorageFull(err) ? 'storage_full' : 'unavailable', message: `storing the output failed: ${(err as Error).message}` } };
            }
          }
          await this.deliver(req, clone.index, result);
        });
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'fork failed');
      respond({ ok: false, error: toWireError(err), hostId: this.deps.hostId });
    }
  }

  /**
   * Sends a clone's result where the fork asked. A job's results go to its
   * streams through JetStream and are retried until acknowledged (a lost one
   * would cost the clone's time limit and a retry); a driver's inbox (tests,
   * benchmarks) gets a plain publish.
   */
  private async deliver(req: ForkRequest, index: number, result: CloneResult): Promise<void> {
    const bytes = encode(result);
    if (!req.perIndexResults) {
      this.deps.nc.publish(req.resultSubject, bytes);
      return;
    }
    const subject = `${result.ok ? req.resultSubject : (req.failSubject ?? req.resultSubject)}.${index}`;
    try {
      let outcome = await publishResult(this.js, this.deps.link, subject, bytes, `${req.requestId}.${index}`, { stopped: () => this.closed });
      // The result kept for the index may be a forgery that the coordinator refuses and deletes: try again a few times.
      for (let wait = 250; outcome === 'refused' && wait <= 2000 && !this.closed; wait *= 2) {
        await new Promise((r) => setTimeout(r, wait));
        outcome = await publishResult(this.js, this.deps.link, subject, bytes, `${req.requestId}.${index}`, { stopped: () => this.closed });
      }
      // Another attempt's result was first (a clone re-run elsewhere while this host was paused or cut off): this one is refused, never counted twice.
      if (outcome === 'refused') this.deps.log.info({ requestId: req.requestId, index, ok: result.ok }, 'clone result refused: the index has its result already');
    } catch (err) {
      this.deps.log.error({ requestId: req.requestId, index, err: (err as Error).message }, 'clone result lost: it could not be stored');
      // The results stream is full: say so on the failures stream, so that the coordinator fails the clone now, not at its time limit.
      if (result.ok && req.failSubject && err instanceof FlurryError && err.code === 'storage_full') {
        await this.deliver(req, index, { ...result, ok: false, output: undefined, outputObject: undefined, error: err.toWire() });
      }
    }
  }

  /** The descriptor of a snapshot this host holds the parent of or caches pages of. */
  private knownDescriptor(snapshotId: string): SnapshotDescriptor | undefined {
    return this.parents.get(snapshotId)?.descriptor ?? this.adopted.get(snapshotId)?.descriptor ?? this.adopted.get(`${snapshotId}#unicast`)?.descriptor;
  }

  /** Makes the snapshot's memory available on this host, once per snapshot. */
  private async prepare(d: SnapshotDescriptor, unicast: boolean, prefetch: boolean): Promise<{ key: string; adopted?: AdoptedSnapshot }> {
    const parent = this.parents.get(d.snapshotId);
    if (parent) return { key: parent.key };
    const cacheKey = unicast ? `${d.snapshotId}#unicast` : d.snapshotId;
    let adopted = this.adopted.get(cacheKey);
    if (!adopted) {
      const key = `${snapKey(d.snapshotId)}${unicast ? '#unicast' : ''}@${++this.adoptions}`;
      // Room for every page it may come to hold; held until it is adopted, then it counts what it holds.
      const admitted = this.deps.budget?.admit(nonZeroChunkBytes(d), `pages of snapshot ${d.snapshotId}`);
      let cache: PageCache;
      try {
        cache = new PageCache({ nc: this.deps.nc, link: this.deps.link, log: this.deps.log, hostId: this.deps.hostId, descriptor: d, pager: this.deps.pager, unicast });
      } catch (err) {
        admitted?.done();
        throw err;
      }
      const entry: AdoptedSnapshot = { key, descriptor: d, cache, ready: Promise.resolve(), active: 0, lastUsed: Date.now() };
      const holding = pageCacheHolding(cacheKey);
      let adoptedHere = false;
      this.deps.budget?.track(holding, { kind: 'page cache', bytes: () => cache.heldBytes });
      // Idle once adopted and no clone runs from it; never while its fork is still preparing it.
      this.deps.budget?.evictable(holding, { idleSince: () => (adoptedHere && entry.active === 0 ? entry.lastUsed : undefined), evict: () => this.dropAdopted(cacheKey, entry) });
      // An adoption cut short by the cache failing (which drops it) reports the cache's reason, not the drop.
      entry.ready = this.adopt(key, d, cache).catch((err: unknown) => {
        throw cache.failedWith ?? err;
      });
      // A cache that failed is dropped, so that it does not outlive this fork while its parent is kept: the next fork adopts afresh.
      entry.ready.catch(() => this.dropAdopted(cacheKey, entry));
      void entry.ready.then(() => (adoptedHere = true), () => undefined).finally(() => admitted?.done());
      cache.onFailure((err) => {
        this.deps.log.warn({ snapshotId: d.snapshotId, err: err.message }, 'page cache failed; stopping its clones');
        this.deps.pool.abort(key, err);
        this.dropAdopted(cacheKey, entry);
      });
      this.adopted.set(cacheKey, entry);
      adopted = entry;
      if (prefetch) cache.prefetchWorkingSet();
      else if (this.deps.pager) cache.prefetchPointedTo();
      this.deps.onChange?.();
    }
    adopted.lastUsed = Date.now();
    await adopted.ready;
    return { key: adopted.key, adopted };
  }

  private async adopt(key: string, d: SnapshotDescriptor, cache: PageCache): Promise<void> {
    const t0 = performance.now();
    const moduleBytes = await fetchModule(this.deps.modules, d.tenant, d.moduleDigest);
    // The cache may have failed meanwhile (a prefetched chunk failed its hash): it is dropped and
    // closed then, and nothing may be adopted from it, or clones would fault on a store nobody fills.
    cache.throwIfFailed();
    const t1 = performance.now();
    // The portable pager cannot fault pages in: fill the whole memory before any clone starts.
    if (!this.deps.pager) await cache.fillAll();
    const t2 = performance.now();
    await this.deps.pool.adoptSnapshot(key, { moduleBytes, byteLength: d.memoryBytes, maximumPages: d.maximumPages, globals: d.globals, source: cache.source(), tenant: d.tenant });
    cache.throwIfFailed();
    this.deps.log.debug({ snapshotId: d.snapshotId, moduleMs: t1 - t0, fillMs: t2 - t1, adoptMs: performance.now() - t2 }, 'snapshot adopted');
  }

  private async runClone(
    req: ForkRequest,
    d: SnapshotDescriptor,
    clone: { index: number; input: Uint8Array },
    prepared: { key: string; adopted?: AdoptedSnapshot } | undefined,
    received: number,
    onStarted: () => void,
  ): Promise<CloneResult> {
    const callId = `${req.requestId}.${clone.index}`;
    let startMs = -1;
    const began = performance.now();
    let key = prepared?.key;
    let ownKey: string | undefined;
    try {
      const inputObject = req.objects?.inputs?.[clone.index];
      if (inputObject) {
        const bytes = await (await this.objectStore(req.objects!.store)).getBlob(inputObject);
        if (!bytes) throw new FlurryError('not_found', `the input object ${inputObject} is missing`);
        clone = { index: clone.index, input: bytes };
      }
      if (!key) {
        // Baselines: a clone of its own, booted cold or filled eagerly over unicast.
        ownKey = `${snapKey(d.snapshotId)}#${req.mode}#${req.requestId}#${clone.index}`;
        key = ownKey;
        this.trackOwn(d.snapshotId, ownKey, true);
        await this.bootOwn(ownKey, req, d);
      }
      let result: CallResult;
      if (req.entry === 'reduce') {
        startMs = performance.now() - received;
        onStarted();
        result = await this.deps.pool.reduce(key, req.count, clone.input, callId, req.timeoutMs);
      } else {
        const progressSubject = req.progressSubject;
        const onProgress = progressSubject
          ? (done: number, total: number) => this.deps.nc.publish(progressSubject, encode({ requestId: req.requestId, hostId: this.deps.hostId, index: clone.index, done, total } satisfies CloneProgress))
          : undefined;
        result = await this.deps.pool.run(key, clone.index, req.count, clone.input, callId, onProgress, () => {
          startMs = performance.now() - received;
          onStarted();
        }, req.timeoutMs);
      }
      this.deps.log.debug({ requestId: req.requestId, index: clone.index, startMs, threadStartMs: result.startMs, restoreMs: result.memory?.restoreMs, spare: result.memory?.spare, faultWaitMs: result.memory?.faultWaitMs }, 'clone done');
      return this.cloneResult(req, clone.index, startMs, performance.now() - began, result, prepared?.adopted);
    } catch (err) {
      return { requestId: req.requestId, hostId: this.deps.hostId, index: clone.index, ok: false, error: toWireError(err), startMs, runMs: performance.now() - began, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0 };
    } finally {
      if (ownKey) {
        this.trackOwn(d.snapshotId, ownKey, false);
        void this.deps.pool.releaseSnapshot(ownKey);
      }
    }
  }

  private trackOwn(snapshotId: string, key: string, on: boolean): void {
    const keys = this.ownBoots.get(snapshotId) ?? new Set<string>();
    if (on) keys.add(key);
    else keys.delete(key);
    if (keys.size > 0) this.ownBoots.set(snapshotId, keys);
    else this.ownBoots.delete(snapshotId);
  }

  private async bootOwn(key: string, req: ForkRequest, d: SnapshotDescriptor): Promise<void> {
    const moduleBytes = await fetchModule(this.deps.modules, d.tenant, d.moduleDigest);
    if (req.mode === 'cold') {
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

  private cloneResult(req: ForkRequest, index: number, startMs: number, runMs: number, r: CallResult, adopted?: AdoptedSnapshot): CloneResult {
    const m = r.memory;
    const pages: PageCounts = { local: 0, multicast: 0, unicast: 0, zero: m?.zeroPages ?? 0 };
    if (m?.mode === 'lazy') {
      // Pages a clone waited for were fetched for it; the rest were already on this host.
      const waited = m.pagesWaited;
      pages.local = Math.max(0, m.pagesFromStore - waited);
      if (adopted?.cache.stats && adopted.cache.stats.chunksMulticast + adopted.cache.stats.chunksUnicast > 0) {
        const s = adopted.cache.stats;
        const share = s.chunksMulticast / (s.chunksMulticast + s.chunksUnicast);
        pages.multicast = Math.round(waited * share);
        pages.unicast = waited - pages.multicast;
      } else pages.unicast = waited;
    }
    return {
      requestId: req.requestId, hostId: this.deps.hostId, index, ok: true, output: r.body, startMs, runMs, pages,
      faultWaitMs: m?.faultWaitMs ?? 0, progress: r.progress,
    };
  }

  private readonly stores = new Map<string, Promise<ObjectStore>>();

  /** An object store of jobs' large data, opened once. */
  private objectStore(name: string): Promise<ObjectStore> {
    let p = this.stores.get(name);
    if (!p) {
      p = openExistingObjects(this.deps.nc, name);
      p.catch(() => this.stores.delete(name));
      this.stores.set(name, p);
    }
    return p;
  }

  async onRelease(msg: Msg): Promise<void> {
    let req: ReleaseRequest;
    try {
      req = decodeOrRefuse('ReleaseRequest', msg.data, msg.subject);
    } catch (err) {
      msg.respond(encode({ hostId: this.deps.hostId, error: toWireError(err) } satisfies ReleaseReply));
      return;
    }
    msg.respond(encode(this.release(req.snapshotId, req.holder)));
  }

  /** A parent host freed a kept parent: its pages are no use any more. */
  onParentFreed(data: Uint8Array): void {
    const req = decodeChecked('ReleaseRequest', data, Subjects.allParentsFreed);
    if (!req) return;
    if (this.parents.has(req.snapshotId)) return;
    if (this.adopted.has(req.snapshotId) || this.adopted.has(`${req.snapshotId}#unicast`)) {
      this.deps.log.debug({ snapshotId: req.snapshotId }, 'parent freed; dropping its cached pages');
      this.release(req.snapshotId);
    }
  }

  /** Page caches nobody used for the idle time (their parent host may be gone without a word). */
  private sweepPageCaches(): void {
    const now = Date.now();
    for (const [cacheKey, a] of this.adopted) {
      if (a.active === 0 && now - a.lastUsed > this.deps.parentIdleMs) this.release(cacheKey.split('#')[0]);
    }
  }

  /** Stops every clone of a snapshot on this host now (a cancelled job); the snapshot itself stays until released. */
  async onCancel(msg: Msg): Promise<void> {
    let req: CancelRequest;
    try {
      req = decodeOrRefuse('CancelRequest', msg.data, msg.subject);
    } catch (err) {
      msg.respond(encode({ hostId: this.deps.hostId, stopped: false, error: toWireError(err) } satisfies CancelReply));
      return;
    }
    msg.respond(encode({ hostId: this.deps.hostId, stopped: this.cancel(req.snapshotId, req.jobId) } satisfies CancelReply));
  }

  /** Stops the clones of a snapshot, or only one job's (their call ids start with the job id). */
  cancel(snapshotId: string, jobId?: string): boolean {
    const keys = new Set<string>();
    const parent = this.parents.get(snapshotId);
    if (parent) keys.add(parent.key);
    for (const cacheKey of [snapshotId, `${snapshotId}#unicast`]) {
      const a = this.adopted.get(cacheKey);
      if (a) keys.add(a.key);
    }
    for (const key of this.ownBoots.get(snapshotId) ?? []) keys.add(key);
    for (const key of keys) this.deps.pool.abort(key, new FlurryError('unavailable', `snapshot ${snapshotId} was cancelled`), jobId === undefined ? undefined : `${jobId}.`);
    return keys.size > 0;
  }

  /**
   * Lets go of a snapshot here. A kept parent released by one of its holders
   * stays (idle once no holder is left); without a holder, or not kept, the
   * parent is freed now. Cached pages of the snapshot are dropped.
   */
  release(snapshotId: string, holder?: string): ReleaseReply {
    const reply: ReleaseReply = { hostId: this.deps.hostId };
    const parent = this.parents.get(snapshotId);
    if (parent) {
      reply.server = { ...parent.server.stats };
      if (holder !== undefined && this.keeper.has(snapshotId)) this.keeper.release(snapshotId, holder);
      else {
        this.keeper.forget(snapshotId);
        this.freeParent(snapshotId);
      }
    }
    for (const cacheKey of [snapshotId, `${snapshotId}#unicast`]) {
      const a = this.dropAdopted(cacheKey);
      if (!a) continue;
      const prev = reply.cache;
      reply.cache = prev
        ? { chunksRequested: prev.chunksRequested + a.cache.stats.chunksRequested, chunksUnicast: prev.chunksUnicast + a.cache.stats.chunksUnicast, chunksMulticast: prev.chunksMulticast + a.cache.stats.chunksMulticast, bytesReceived: prev.bytesReceived + a.cache.stats.bytesReceived, duplicateChunks: prev.duplicateChunks + a.cache.stats.duplicateChunks }
        : { ...a.cache.stats };
    }
    return reply;
  }

  /** Drops an adopted snapshot (or only `entry`, if it is still the one adopted) and returns it. */
  private dropAdopted(cacheKey: string, entry?: AdoptedSnapshot): AdoptedSnapshot | undefined {
    const a = this.adopted.get(cacheKey);
    if (!a || (entry && a !== entry)) return undefined;
    // The cache's store is freed once the pool has let go of every clone memory registered with it.
    void this.deps.pool.releaseSnapshot(a.key).finally(() => a.cache.close());
    this.adopted.delete(cacheKey);
    this.deps.budget?.untrack(pageCacheHolding(cacheKey));
    this.deps.onChange?.();
    return a;
  }

  /** Frees a parent (memory server, snapshot) and tells the fleet, so that hosts drop its cached pages. */
  private freeParent(snapshotId: string): void {
    const parent = this.parents.get(snapshotId);
    if (!parent) return;
    parent.server.close();
    void this.deps.pool.releaseSnapshot(parent.key);
    this.parents.delete(snapshotId);
    const tenant = parent.descriptor.tenant;
    this.deps.nc.publish(Subjects.parentFreed(tenant), encode({ tenant, snapshotId } satisfies ReleaseRequest));
    this.deps.log.info({ snapshotId, fn: `${tenant}/${parent.descriptor.function}` }, 'parent freed');
  }

  /** Drops everything (host drain). */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const id of new Set([...this.parents.keys(), ...[...this.adopted.keys()].map((k) => k.split('#')[0])])) this.release(id);
  }
}
