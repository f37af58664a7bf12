/**
 * The snapshots a pool makes clones from, by key: parents warmed here (init
 * run once in a call thread, then snapshotted) and snapshots adopted from
 * another host. Each is sent to every call thread (and to an instance thread
 * with its first instance of the key), counted against the host's memory
 * budget, and freed once every thread has dropped it.
 */
import { FlurryError } from '@flurry/core';
import type { NativePager } from '../native/pager.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { GuestLimits, WarmInfo } from './call-types.js';
import { checkGuestMemory } from './guest-memory-cap.js';
import type { Snapshot } from './instance.js';
import { compile, ModuleVariantsCache, type ModuleVariants } from './module-variants.js';
import { checkRemote, snapshotFromRemote, type RemoteSnapshot } from './remote-snapshot.js';
import { describeGlobals, snapshotImage, type SnapshotImage } from './snapshot-image.js';
import type { SnapshotMemory } from './snapshot-memory.js';
import { SnapshotRegistry, type HeldSnapshot } from './snapshot-registry.js';
import type { GuestThread } from './thread-jobs.js';
import { ownCopy, type ToThread } from './thread-messages.js';
import type { ThreadScheduler } from './thread-scheduler.js';

/** A warm parent's WarmInfo; adopted snapshots have none. */
export type Held = HeldSnapshot<GuestThread, WarmInfo | undefined>;

/** A key being warmed or adopted. */
interface Pending {
  kind: 'warm' | 'adopt';
  promise: Promise<unknown>;
  evicted: boolean;
}

/** The id a warm key's snapshot has in the memory budget (for its owner to make it evictable). */
export function snapshotHolding(key: string): string {
  return `snapshot:${key}`;
}

export class SnapshotTable {
  private readonly snapshots = new SnapshotRegistry<GuestThread, WarmInfo | undefined>((held) => this.free(held));
  private readonly pending = new Map<string, Pending>();
  private readonly modules = new ModuleVariantsCache();
  /** The tenant of every key warm, adopted, or being warmed or adopted. */
  private readonly keyTenants = new Map<string, string>();

  constructor(
    private readonly scheduler: ThreadScheduler,
    private readonly limits: GuestLimits,
    private readonly native: NativePager | undefined,
    /** FLURRY_MAX_GUEST_MEMORY: no module declaring more memory is compiled here. */
    private readonly maxGuestMemoryBytes: number | undefined,
    private readonly budget: MemoryBudget | undefined,
    /** A key's shared cells, for call threads that read their own calls (thread-call-cells.ts). */
    private readonly cellsOf?: (key: string) => { id: number; buffer: SharedArrayBuffer },
  ) {}

  get(key: string): Held | undefined {
    return this.snapshots.get(key);
  }

  /** Keys of parents warmed here (not adopted snapshots). */
  warmKeys(): string[] {
    return this.snapshots.keys('warm');
  }

  /** The tenant that owns a key ('' when the caller named none). */
  tenantOf(key: string): string {
    return this.keyTenants.get(key) ?? '';
  }

  /** See GuestPool.warm. */
  warm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array, callId: string | undefined, tenant: string): Promise<WarmInfo> {
    const held = this.snapshots.get(key);
    if (held?.info) return Promise.resolve(held.info);
    const pending = this.pending.get(key);
    if (pending?.kind === 'warm') return pending.promise as Promise<WarmInfo>;
    if (held || pending) return Promise.reject(new FlurryError('bad_request', `${key} holds a snapshot adopted from another host`));
    this.keyTenants.set(key, tenant);
    return this.reserve(key, 'warm', (p) => this.doWarm(key, moduleBytes, initInput, callId, p));
  }

  /** See GuestPool.adoptSnapshot. */
  adopt(key: string, snapshot: RemoteSnapshot): Promise<void> {
    if (this.snapshots.get(key) || this.pending.has(key)) return Promise.reject(new FlurryError('bad_request', `${key} already holds a snapshot`));
    this.keyTenants.set(key, snapshot.tenant ?? '');
    return this.reserve(key, 'adopt', (p) => this.doAdopt(key, snapshot, p));
  }

  /** Runs `work` with the key reserved, so that no other warm or adopt of it starts meanwhile. */
  private reserve<T>(key: string, kind: Pending['kind'], work: (pending: Pending) => Promise<T>): Promise<T> {
    const pending: Pending = { kind, promise: Promise.resolve(), evicted: false };
    const promise = work(pending).finally(() => {
      if (this.pending.get(key) === pending) this.pending.delete(key);
    });
    pending.promise = promise;
    this.pending.set(key, pending);
    return promise;
  }

  private async doWarm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array, callId: string | undefined, pending: Pending): Promise<WarmInfo> {
    const initialBytes = this.checkMemory(moduleBytes);
    // Its declared initial memory is the least it will hold; the snapshot is counted as it is once made.
    const admitted = this.budget?.admit(initialBytes, `the parent ${key}`);
    let variants: ModuleVariants;
    try {
      variants = await this.modules.acquire(moduleBytes);
    } catch (err) {
      admitted?.done();
      throw err;
    }
    let snapshot: Snapshot | undefined;
    try {
      const parent = await compile(variants.parent);
      const input = ownCopy(initInput);
      const answer = await this.scheduler.submit({
        message: { type: 'warm', id: this.scheduler.messageId(), parent, initInput: input },
        transfer: [input.buffer],
        timeoutMs: this.limits.initTimeoutMs,
        what: 'init',
        key,
        callId,
      });
      if (answer.type !== 'warmed') throw new FlurryError('internal', `unexpected answer ${answer.type} to warm`);
      snapshot = answer.snapshot;
      if (pending.evicted) throw new FlurryError('not_found', `${key} was evicted while it was warming`);
      const info: WarmInfo = { initMs: answer.initMs, memoryBytes: snapshot.memory.byteLength, globals: snapshot.globals.length, logs: answer.logs, droppedLogLines: answer.droppedLogLines };
      this.hold(key, 'warm', variants, snapshot, info);
      const bytes = snapshot.memory.byteLength;
      this.budget?.track(snapshotHolding(key), { kind: 'snapshot', bytes: () => bytes });
      return info;
    } catch (err) {
      if (snapshot) this.freeMemory(snapshot.memory);
      this.modules.release(variants);
      throw err;
    } finally {
      admitted?.done();
    }
  }

  /** Refuses a module declaring more memory than FLURRY_MAX_GUEST_MEMORY; answers its initial memory in bytes. */
  private checkMemory(moduleBytes: Uint8Array): number {
    return this.maxGuestMemoryBytes === undefined ? 0 : checkGuestMemory(moduleBytes, this.maxGuestMemoryBytes);
  }

  private async doAdopt(key: string, remote: RemoteSnapshot, pending: Pending): Promise<void> {
    checkRemote(remote, this.native);
    this.checkMemory(remote.moduleBytes);
    const variants = await this.modules.acquire(remote.moduleBytes);
    try {
      const snapshot = snapshotFromRemote(remote, variants);
      if (pending.evicted) throw new FlurryError('not_found', `${key} was released while it was being adopted`);
      this.hold(key, 'adopted', variants, snapshot, undefined);
    } catch (err) {
      this.modules.release(variants);
      throw err;
    }
  }

  /** Keeps a snapshot and sends it to every call thread (an instance thread is sent it with its first instance of the key). */
  private hold(key: string, origin: Held['origin'], variants: ModuleVariants, snapshot: Snapshot, info: WarmInfo | undefined): void {
    const held = this.snapshots.add(key, origin, variants, snapshot, info);
    for (const thread of this.scheduler.callThreads()) this.load(thread, held);
  }

  /** Sends a thread every snapshot held (a new call thread). */
  loadAll(thread: GuestThread): void {
    for (const held of this.snapshots.all()) this.load(thread, held);
  }

  /** Sends a thread a snapshot unless it holds it already. */
  loadOnce(thread: GuestThread, held: Held): void {
    if (!held.holders.has(thread)) this.load(thread, held);
  }

  private load(thread: GuestThread, held: Held): void {
    held.holders.add(thread);
    thread.mailbox.post({ type: 'load', key: held.key, snapshotId: held.id, clone: held.variants.clone, snapshot: held.snapshot, maximumPages: held.variants.maximumPages, stackPointer: held.variants.stackPointer, moduleDigest: held.variants.digest, instancesReusable: held.variants.instancesReusable, ...(this.cellsOf && !thread.holding && { cells: this.cellsOf(held.key) }) } satisfies ToThread);
  }

  /** See GuestPool.snapshotImage. */
  image(key: string): SnapshotImage {
    const held = this.snapshots.get(key);
    if (!held) throw new FlurryError('not_found', `${key} holds no snapshot on this host`);
    const { variants, snapshot } = held;
    const described = { maximumPages: variants.maximumPages, globals: describeGlobals(snapshot.globals, variants.globalTypes), moduleDigest: variants.digest };
    return snapshotImage(snapshot, described, () => held.released);
  }

  /** Drops a key's snapshot from every thread; resolves once no thread holds anything of it (see GuestPool.evict). */
  evict(key: string): Promise<void> {
    const pending = this.pending.get(key);
    if (pending) {
      pending.evicted = true;
      this.pending.delete(key);
    }
    this.keyTenants.delete(key);
    // Counted as freed from here: the threads drop it next, and nothing new may use it.
    this.budget?.untrack(snapshotHolding(key));
    const released = this.snapshots.release(key);
    if (!released) return Promise.resolve();
    const { held, done } = released;
    for (const thread of held.holders) thread.mailbox.post({ type: 'evict', key, snapshotId: held.id } satisfies ToThread);
    return done;
  }

  /** A thread dropped a snapshot it was told to evict. */
  dropped(thread: GuestThread, snapshotId: number): void {
    this.snapshots.dropped(thread, snapshotId);
  }

  /** A thread has exited: what it held died with it. */
  holderGone(thread: GuestThread): void {
    this.snapshots.holderGone(thread);
  }

  /** Every thread is gone (the pool closed): frees everything. */
  releaseAll(): Promise<void> {
    return this.snapshots.releaseAll();
  }

  /** Frees a snapshot nobody holds any more. */
  private free(held: Held): void {
    this.freeMemory(held.snapshot.memory);
    this.modules.release(held.variants);
  }

  freeMemory(memory: SnapshotMemory): void {
    // Copies are garbage-collected; a lazy snapshot's page store is the host's.
    if (memory.kind === 'cow') this.native?.closeFd(memory.fd);
  }
}
