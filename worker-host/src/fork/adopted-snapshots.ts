/**
 * Snapshots whose parent lives on another host, adopted here: one page cache
 * per snapshot and page transport, and the snapshot in the guest pool that
 * clones are made from. Adopted once by the first fork that needs it, kept
 * while clones run from it, dropped when released, when its parent is freed,
 * when idle for the idle time, or when the memory budget needs its room.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { chunkCount, chunkRange, isZeroChunk, type BrokerLink, type Logger, type SnapshotDescriptor } from '@flurry/core';
import type { GuestPool } from '../guest/guest-pool.js';
import type { MemoryBudget } from '../memory-budget.js';
import { fetchModule } from '../module-store.js';
import type { NativePager } from '../native/pager.js';
import { PageCache, type PageCacheStats } from '../page-cache.js';
import { pageCacheHolding, poolKey, type PageTransport } from './pool-keys.js';

export interface AdoptedSnapshot {
  /** Its key in the guest pool. */
  key: string;
  descriptor: SnapshotDescriptor;
  transport: PageTransport;
  cache: PageCache;
  ready: Promise<void>;
  /** Clones running from it now, and when it was last used: an idle one is dropped after the idle time. */
  active: number;
  lastUsed: number;
}

export interface AdoptedSnapshotsDeps {
  hostId: string;
  nc: NatsConnection;
  /** Whether the broker is reachable: stored results and page fetches wait for it. */
  link: BrokerLink;
  modules: ObjectStore;
  pool: GuestPool;
  /** The native pager when this host pages lazily; undefined for the portable pager. */
  pager?: NativePager;
  log: Logger;
  /** The host's memory budget: parents are admitted by the pool; page caches here; idle ones are evictable. */
  budget?: MemoryBudget;
  /** What the host advertises (kept parents, page caches) changed. */
  onChange?(): void;
}

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

/** The sum of two page caches' counts. */
function addStats(a: PageCacheStats, b: PageCacheStats): PageCacheStats {
  return {
    chunksRequested: a.chunksRequested + b.chunksRequested, chunksUnicast: a.chunksUnicast + b.chunksUnicast, chunksMulticast: a.chunksMulticast + b.chunksMulticast,
    bytesReceived: a.bytesReceived + b.bytesReceived, duplicateChunks: a.duplicateChunks + b.duplicateChunks,
  };
}

export class AdoptedSnapshots {
  private readonly bySnapshot = new Map<string, Map<PageTransport, AdoptedSnapshot>>();
  /** Adoptions made, for pool keys that a new adoption never shares with one still being evicted. */
  private adoptions = 0;

  constructor(private readonly deps: AdoptedSnapshotsDeps) {}

  /** Every adoption of a snapshot (one per page transport). */
  of(snapshotId: string): AdoptedSnapshot[] {
    return [...(this.bySnapshot.get(snapshotId)?.values() ?? [])];
  }

  snapshotIds(): string[] {
    return [...this.bySnapshot.keys()];
  }

  /** Snapshots whose pages this host caches from their multicast, for the host record. */
  multicastSnapshotIds(): string[] {
    return this.snapshotIds().filter((id) => this.bySnapshot.get(id)!.has('multicast'));
  }

  /** Snapshots with an adoption no clone used for `idleMs` (its parent host may be gone without a word). */
  idleSnapshotIds(idleMs: number): string[] {
    const now = Date.now();
    return this.snapshotIds().filter((id) => this.of(id).some((a) => a.active === 0 && now - a.lastUsed > idleMs));
  }

  /** The snapshot adopted for `transport`, adopting it first if this host has not (once per snapshot and transport). */
  async prepare(d: SnapshotDescriptor, transport: PageTransport, prefetch: boolean): Promise<AdoptedSnapshot> {
    const adopted = this.bySnapshot.get(d.snapshotId)?.get(transport) ?? this.start(d, transport, prefetch);
    adopted.lastUsed = Date.now();
    await adopted.ready;
    return adopted;
  }

  private start(d: SnapshotDescriptor, transport: PageTransport, prefetch: boolean): AdoptedSnapshot {
    const { budget, log, pool } = this.deps;
    const key = poolKey({ kind: 'adopted', snapshotId: d.snapshotId, transport, adoption: ++this.adoptions });
    // Room for every page it may come to hold; held until it is adopted, then it counts what it holds.
    const admitted = budget?.admit(nonZeroChunkBytes(d), `pages of snapshot ${d.snapshotId}`);
    let cache: PageCache;
    try {
      cache = new PageCache({ nc: this.deps.nc, link: this.deps.link, log, hostId: this.deps.hostId, descriptor: d, pager: this.deps.pager, unicast: transport === 'unicast' });
    } catch (err) {
      admitted?.done();
      throw err;
    }
    const entry: AdoptedSnapshot = { key, descriptor: d, transport, cache, ready: Promise.resolve(), active: 0, lastUsed: Date.now() };
    const holding = pageCacheHolding(d.snapshotId, transport);
    let adoptedHere = false;
    budget?.track(holding, { kind: 'page cache', bytes: () => cache.heldBytes });
    // Idle once adopted and no clone runs from it; never while its fork is still preparing it.
    budget?.evictable(holding, { idleSince: () => (adoptedHere && entry.active === 0 ? entry.lastUsed : undefined), evict: () => this.drop(entry) });
    // An adoption cut short by the cache failing (which drops it) reports the cache's reason, not the drop.
    entry.ready = this.adopt(key, d, cache).catch((err: unknown) => {
      throw cache.failedWith ?? err;
    });
    // A cache that failed is dropped, so that it does not outlive this fork while its parent is kept: the next fork adopts afresh.
    entry.ready.catch(() => this.drop(entry));
    void entry.ready.then(() => (adoptedHere = true), () => undefined).finally(() => admitted?.done());
    cache.onFailure((err) => {
      log.warn({ snapshotId: d.snapshotId, err: err.message }, 'page cache failed; stopping its clones');
      pool.abort(key, err);
      this.drop(entry);
    });
    let adoptions = this.bySnapshot.get(d.snapshotId);
    if (!adoptions) this.bySnapshot.set(d.snapshotId, (adoptions = new Map()));
    adoptions.set(transport, entry);
    if (prefetch) cache.prefetchWorkingSet();
    else if (this.deps.pager) cache.prefetchPointedTo();
    this.deps.onChange?.();
    return entry;
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

  /** Drops every adoption of a snapshot; returns what their page caches moved, if there were any. */
  dropAll(snapshotId: string): PageCacheStats | undefined {
    let stats: PageCacheStats | undefined;
    for (const a of this.of(snapshotId)) {
      if (!this.drop(a)) continue;
      stats = stats ? addStats(stats, a.cache.stats) : { ...a.cache.stats };
    }
    return stats;
  }

  /** Drops an adoption if it is still the one adopted for its snapshot and transport; false if it was not. */
  private drop(entry: AdoptedSnapshot): boolean {
    const { snapshotId } = entry.descriptor;
    const adoptions = this.bySnapshot.get(snapshotId);
    if (adoptions?.get(entry.transport) !== entry) return false;
    // The cache's store is freed once the pool has let go of every clone memory registered with it.
    void this.deps.pool.releaseSnapshot(entry.key).finally(() => entry.cache.close());
    adoptions.delete(entry.transport);
    if (adoptions.size === 0) this.bySnapshot.delete(snapshotId);
    this.deps.budget?.untrack(pageCacheHolding(snapshotId, entry.transport));
    this.deps.onChange?.();
    return true;
  }
}
