/**
 * Parents snapshotted on this host: booting a parent with its init input,
 * freezing and describing it, serving its memory to other hosts, keeping it
 * for later jobs with the same module and init input (kept-parents.ts), and
 * freeing it, which the fleet hears so that hosts drop their cached pages.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import {
  describeMemoryByPieces, encodeDescriptor, initDigest, newId, PAGE_SIZE, DEFAULT_CHUNK_PAGES, parentKeyString, publishTo, Subjects,
  type KeptParent, type Logger, type ParentKey, type SnapshotDescriptor, type SnapshotMade, type SnapshotRequest,
} from '@flurry/core';
import { GuestPool } from '../guest/guest-pool.js';
import { ParentKeeper } from '../kept-parents.js';
import type { MemoryBudget } from '../memory-budget.js';
import { MemoryServer, type MemoryServerStats } from '../memory-server.js';
import { fetchModule } from '../module-store.js';
import { checkDataRef } from '../request-rights.js';
import type { ForkObjects } from './objects.js';
import { poolKey } from './pool-keys.js';

export interface ParentSnapshot {
  /** Its key in the guest pool. */
  key: string;
  descriptor: SnapshotDescriptor;
  encoded: Uint8Array;
  server: MemoryServer;
}


export interface ParentSnapshotsDeps {
  hostId: string;
  nc: NatsConnection;
  modules: ObjectStore;
  objects: ForkObjects;
  pool: GuestPool;
  log: Logger;
  /** Kept parents (docs/jobs.md): how long an idle one stays, and how many bytes of idle ones at most. */
  parentIdleMs: number;
  parentCacheBytes: number;
  /** The host's memory budget: parents are admitted by the pool; idle kept ones are evictable. */
  budget?: MemoryBudget;
  /** What the host advertises (kept parents) changed. */
  onChange?(): void;
}

export class ParentSnapshots {
  private readonly parents = new Map<string, ParentSnapshot>();
  private readonly keeper: ParentKeeper;
  /** Parents being made for a ParentKey: a second job with the same key waits and shares. */
  private readonly making = new Map<string, Promise<SnapshotMade>>();

  constructor(private readonly deps: ParentSnapshotsDeps) {
    this.keeper = new ParentKeeper({
      idleMs: deps.parentIdleMs, cacheBytes: deps.parentCacheBytes, onChange: deps.onChange,
      free: (snapshotId) => this.free(snapshotId),
    });
  }

  get(snapshotId: string): ParentSnapshot | undefined {
    return this.parents.get(snapshotId);
  }

  snapshotIds(): string[] {
    return [...this.parents.keys()];
  }

  /** Kept parents, for the host record. */
  kept(): KeptParent[] {
    return this.keeper.list();
  }

  /** Answers a snapshot request: a kept parent with the same key if there is one, else a new parent (kept if asked). */
  async snapshot(req: SnapshotRequest): Promise<SnapshotMade> {
    checkDataRef(req.tenant, req.initData);
    if (!req.keep) return this.make(req);
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
    const making = this.make(req);
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

  private async make(req: SnapshotRequest): Promise<SnapshotMade> {
    const { pool, log } = this.deps;
    const snapshotId = newId('snap');
    const key = poolKey({ kind: 'parent', snapshotId });
    const [moduleBytes, initInput] = await Promise.all([fetchModule(this.deps.modules, req.tenant, req.digest), this.deps.objects.initInput(req.initInput, req.initData)]);
    const warm = await pool.warm(key, moduleBytes, initInput, req.requestId, req.tenant);
    // Only a kept parent that no job holds may go for room; a job's own parent is freed by its release.
    this.deps.budget?.evictable(GuestPool.snapshotHolding(key), {
      idleSince: () => this.keeper.idleSince(snapshotId),
      evict: () => {
        this.keeper.forget(snapshotId);
        this.free(snapshotId);
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
    const server = new MemoryServer(this.deps.nc, descriptor, (o, l) => image.read(o, l), log);
    const encoded = encodeDescriptor(descriptor);
    this.parents.set(snapshotId, { key, descriptor, encoded, server });
    await this.deps.nc.flush();
    const snapshotMs = performance.now() - t0;
    log.info({ requestId: req.requestId, snapshotId, fn: `${req.tenant}/${req.name}`, memoryBytes: image.byteLength, initMs: warm.initMs, snapshotMs, keep: req.keep === true }, 'snapshot ready');
    return { ok: true, hostId: this.deps.hostId, snapshotId, descriptor: encoded, initMs: warm.initMs, snapshotMs };
  }

  /**
   * Lets go of a parent: a kept parent released by one of its holders stays
   * (idle once no holder is left); without a holder, or not kept, it is freed
   * now. Returns what its memory server sent, if the parent is here.
   */
  release(snapshotId: string, holder?: string): MemoryServerStats | undefined {
    const parent = this.parents.get(snapshotId);
    if (!parent) return undefined;
    const stats = { ...parent.server.stats };
    if (holder !== undefined && this.keeper.has(snapshotId)) this.keeper.release(snapshotId, holder);
    else {
      this.keeper.forget(snapshotId);
      this.free(snapshotId);
    }
    return stats;
  }

  /** Frees a parent (memory server, snapshot) and tells the fleet, so that hosts drop its cached pages. */
  private free(snapshotId: string): void {
    const parent = this.parents.get(snapshotId);
    if (!parent) return;
    parent.server.close();
    void this.deps.pool.releaseSnapshot(parent.key);
    this.parents.delete(snapshotId);
    const tenant = parent.descriptor.tenant;
    publishTo(this.deps.nc, 'parentFreed', Subjects.parentFreed(tenant), { tenant, snapshotId });
    this.deps.log.info({ snapshotId, fn: `${tenant}/${parent.descriptor.function}` }, 'parent freed');
  }
}
