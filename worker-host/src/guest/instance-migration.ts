/**
 * The pool's steps of live migration of a persistent instance, both sides:
 * on the source dirty tracking, pre-copy rounds, stop-and-copy with the
 * requests held, commit or abort; on the target an empty instance that
 * receives pages and globals. Each step is a job pinned to the instance's
 * thread (migration-ops.ts runs it there), so it runs between requests.
 * The pre-copy driver sequences them (migration/instance-source.ts, instance-target.ts).
 */
import { FlurryError, PAGE_SIZE } from '@flurry/core';
import type { MemoryBudget } from '../memory-budget.js';
import { collectGarbage } from '../collect-garbage.js';
import type { GlobalValue } from './instance.js';
import type { MigrationMode } from './migration-ops.js';
import type { HeldRequest, PersistentInstances, PoolInstance } from './persistent-instances.js';
import { CHUNK_BYTES } from '../migration/wire-pages.js';
import { ownCopy } from './thread-messages.js';

/**
 * A round is read in slices of at most this many pages, one apply message (CHUNK_BYTES): reading one takes the
 * instance's thread well under a millisecond between two of its requests, and one buffer of this size, handed
 * back after each slice is sent, serves every slice of the migration.
 */
export const ROUND_SLICE_PAGES = Math.floor(CHUNK_BYTES / PAGE_SIZE);

/** Pages of a pre-copy round: `bytes` holds PAGE_SIZE bytes per page, in the order of `pages`. */
export interface MigrationRound {
  pages: Uint32Array;
  bytes: Uint8Array;
  /** The instance's memory size when the round was read. */
  memoryBytes: number;
  /** The round goes on: this was one slice of it (the instance serves between slices). */
  more?: boolean;
  /** A later round: its pages still to read after this slice (at its first slice, the round's size less this slice's). */
  left?: number;
}

/** The last round, read after the instance stopped taking requests, with its mutable globals. */
export interface MigrationFinal extends MigrationRound {
  globals: Record<string, GlobalValue>;
  /** The dirty scan and copy in the instance's thread. */
  readMs: number;
  /** Waiting for the thread: the request in progress, if any. */
  waitMs: number;
}

export class InstanceMigrationSteps {
  constructor(
    private readonly instances: PersistentInstances,
    private readonly budget: MemoryBudget | undefined,
  ) {}

  // Source side.

  /** See GuestPool.beginMigration. */
  async begin(instanceId: string, mode: MigrationMode): Promise<{ fromParent: boolean; memoryBytes: number }> {
    const inst = this.instances.get(instanceId);
    if (inst.migration) throw new FlurryError('conflict', `instance ${instanceId} is migrating already`);
    inst.migration = { role: 'source', stopped: false, held: [], applied: 0 };
    let tracking = false;
    try {
      // Armed in steps, each a job of the instance's thread: its requests run between them (migration-ops.ts, arm).
      let result = await this.instances.migrationStep(inst, { op: 'track', mode });
      tracking = true;
      while (result.op === 'tracked' && !result.armed) result = await this.instances.migrationStep(inst, { op: 'arm' });
      if (result.op !== 'tracked') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
      return { fromParent: result.fromParent, memoryBytes: result.memoryBytes };
    } catch (err) {
      if (tracking) await this.instances.migrationStep(inst, { op: 'untrack' }).catch(() => undefined);
      inst.migration = undefined;
      throw err;
    }
  }

  /** See GuestPool.migrationRound. */
  async round(instanceId: string, fromParent: boolean, reuse?: ArrayBuffer): Promise<MigrationRound> {
    const inst = this.instances.migrating(instanceId, 'source');
    if (inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} is stopped for stop-and-copy`);
    const result = await this.instances.migrationStep(inst, { op: 'round', maxPages: ROUND_SLICE_PAGES, fromParent, ...(reuse ? { reuse } : {}) }, reuse ? [reuse] : []);
    if (result.op !== 'round') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    const { pages, bytes, memoryBytes, more, left } = result;
    return { pages, bytes, memoryBytes, more, ...(left !== undefined ? { left } : {}) };
  }

  /** See GuestPool.stopAndCopy. */
  async stopAndCopy(instanceId: string, fromParent: boolean, reuse?: ArrayBuffer): Promise<MigrationFinal> {
    const inst = this.instances.migrating(instanceId, 'source');
    if (inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} is stopped already`);
    inst.migration!.stopped = true;
    // Its requests not started yet wait with the ones arriving from now on, in order: the stop waits for one request at most.
    for (const job of inst.thread.holding.pinned.extract((j) => j.instanceId === instanceId && j.hold !== undefined)) job.hold!();
    const stopped = performance.now();
    let waitMs = 0;
    const result = await this.instances.migrationStep(inst, { op: 'final', fromParent, ...(reuse ? { reuse } : {}) }, reuse ? [reuse] : [], () => (waitMs = performance.now() - stopped));
    if (result.op !== 'final') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    const { pages, bytes, memoryBytes, globals, readMs } = result;
    return { pages, bytes, memoryBytes, globals, readMs, waitMs };
  }

  /** See GuestPool.heldRequests. */
  held(instanceId: string): HeldRequest[] {
    const inst = this.instances.migrating(instanceId, 'source');
    if (!inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} has not been stopped (stopAndCopy first)`);
    return [...inst.migration!.held];
  }

  /** See GuestPool.commitMigration. */
  commit(instanceId: string): HeldRequest[] {
    const inst = this.instances.migrating(instanceId, 'source');
    if (!inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} has not been stopped (stopAndCopy first)`);
    // It stays stopped (nothing runs in it again) until destroyed, which the caller does after the pause.
    return inst.migration!.held.splice(0);
  }

  /** See GuestPool.abortMigration. */
  async abort(instanceId: string): Promise<void> {
    const inst = this.instances.migrating(instanceId, 'source');
    const { held } = inst.migration!;
    inst.migration = undefined;
    for (const h of held) h.forward(this.instances.handle(instanceId, h.request, h.callId, h.limits));
    await this.instances.migrationStep(inst, { op: 'untrack' });
  }

  // Target side.

  /** See GuestPool.receiveInstance. */
  async receive(key: string, memoryBytes: number, fromParent: boolean): Promise<string> {
    const admitted = this.budget?.admit(memoryBytes, `an instance of ${key} migrating here`);
    let placed: ReturnType<PersistentInstances['place']> | undefined;
    let made = false;
    try {
      placed = this.instances.place(key);
      const { thread, instanceId } = placed;
      const inst: PoolInstance = { instanceId, key, createdAt: Date.now(), requests: 0, thread, memoryBytes, migration: { role: 'target', stopped: false, held: [], applied: 0 } };
      await this.instances.migrationStep(inst, { op: 'receive', key, memoryBytes, fromParent });
      if (thread.retired || this.instances.closing) throw new FlurryError('unavailable', `instance ${instanceId} was lost with its thread`);
      this.instances.track(inst);
      made = true;
      return instanceId;
    } finally {
      if (placed) this.instances.settleClaim(placed.thread, placed.instanceId, made);
      admitted?.done();
    }
  }

  /** See GuestPool.applyPages. */
  async apply(instanceId: string, pages: Uint32Array, bytes: Uint8Array, memoryBytes?: number): Promise<void> {
    const inst = this.instances.migrating(instanceId, 'target');
    const migration = inst.migration!;
    if (migration.finishing) throw new FlurryError('conflict', `instance ${instanceId} is finishing its migration: no more pages`);
    let step: Promise<unknown>;
    if (pages.buffer instanceof SharedArrayBuffer && bytes.buffer instanceof SharedArrayBuffer) {
      // Shared with the thread (the page stream's slots): read there in place, nothing copied or made per message.
      step = this.instances.migrationStep(inst, { op: 'apply', pages, bytes, memoryBytes });
    } else {
      const ownPages = Uint32Array.from(pages);
      const own = ownCopy(bytes);
      step = this.instances.migrationStep(inst, { op: 'apply', pages: ownPages, bytes: own, memoryBytes }, [ownPages.buffer, own.buffer]);
    }
    // Counted once queued (the thread runs its steps in order): a finish queued after it runs after it, and waits
    // for it to have succeeded (finish), so the commit need not wait for the thread to count the last pages.
    migration.applied += pages.length;
    const writing = (migration.writing ??= new Set());
    writing.add(step);
    try {
      await step;
    } finally {
      writing.delete(step);
    }
    if (memoryBytes !== undefined) inst.memoryBytes = Math.max(inst.memoryBytes, memoryBytes);
  }

  /**
   * See GuestPool.finishReceive. Resolves once the last step is queued on the instance's thread, not once it ran:
   * the instance takes requests from then on, held until the step is done (then run in arrival order), so that
   * the target can answer the commit without waiting for its thread (docs/services.md, "Migration"). `finished`
   * says when it ran; if it failed the instance is destroyed and its held requests fail, never run on a memory
   * half written.
   */
  async finish(instanceId: string, globals: Record<string, GlobalValue>, last?: MigrationRound): Promise<{ pagesApplied: number; finished: Promise<void> }> {
    const inst = this.instances.migrating(instanceId, 'target');
    const migration = inst.migration!;
    if (migration.finishing) throw new FlurryError('conflict', `instance ${instanceId} is finishing its migration already`);
    const pagesApplied = migration.applied + (last?.pages.length ?? 0);
    // Writes still under way (the page stream's last frames) run before it on the thread; if one failed, the
    // memory is not the source's: the finish fails with it.
    const writing = [...(migration.writing ?? [])];
    let step: Promise<unknown>;
    if (!last) step = this.instances.migrationStep(inst, { op: 'finish', globals });
    else {
      const own = { pages: Uint32Array.from(last.pages), bytes: ownCopy(last.bytes), memoryBytes: last.memoryBytes };
      step = this.instances.migrationStep(inst, { op: 'finish', globals, last: own }, [own.pages.buffer, own.bytes.buffer]);
    }
    if (writing.length > 0) step = Promise.all([...writing, step]);
    // Queued (migrationStep submits at once): requests from now on are held behind it.
    migration.finishing = true;
    const finished = step.then(
      () => {
        if (inst.migration !== migration) return;
        inst.migration = undefined;
        for (const h of migration.held.splice(0)) h.forward(this.instances.handle(instanceId, h.request, h.callId, h.limits));
      },
      (err: unknown) => {
        // Its memory may be half written: nothing runs in it (destroy fails the held requests).
        this.instances.destroy(instanceId);
        throw err;
      },
    );
    finished.catch(() => undefined);
    return { pagesApplied, finished };
  }

  /** See GuestPool.settleReceive. */
  async settle(instanceId: string): Promise<void> {
    await this.instances.migrationStep(this.instances.migrating(instanceId, 'target'), { op: 'settle' });
  }

  // Either side.

  /** See GuestPool.quiesceMigration. */
  async quiesce(instanceId: string): Promise<void> {
    const inst = this.instances.migrating(instanceId, 'target');
    collectGarbage();
    await this.instances.migrationStep(inst, { op: 'quiesce' });
  }

  /** See GuestPool.instanceMemoryHash. */
  async memoryHash(instanceId: string): Promise<{ hash: string; memoryBytes: number }> {
    const result = await this.instances.migrationStep(this.instances.get(instanceId), { op: 'hash' });
    if (result.op !== 'hash') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    return { hash: result.hash, memoryBytes: result.memoryBytes };
  }
}
