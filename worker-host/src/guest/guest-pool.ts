/**
 * The pool of guest threads that the host's main process runs every guest
 * call through, composed of its parts: the thread scheduler (queue, limits,
 * timeouts, respawn: thread-scheduler.ts), the snapshot table (warm parents
 * and adopted snapshots: snapshot-table.ts), persistent instances with their
 * held requests (persistent-instances.ts) and their migration steps
 * (instance-migration.ts). Every call forks a fresh clone of a snapshot.
 * Every module is checked against FLURRY_MAX_GUEST_MEMORY before it is
 * compiled, and warm snapshots and instances count against the host's memory budget.
 */
import { totalmem } from 'node:os';
import { FlurryError, type InvokeLimits, type Logger } from '@flurry/core';
import { loadNativePager, nativePagerStatus, type NativePager } from '../native/pager.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { CallResult, GuestLimits, HttpRequestData, PagerMode, WarmInfo } from './call-types.js';
import type { EntryPoint, GlobalValue } from './instance.js';
import { InstanceMigrationSteps, type MigrationFinal, type MigrationRound } from './instance-migration.js';
import { defaultInstanceThreads } from './instance-threads.js';
import type { MigrationMode } from './migration-ops.js';
import { PersistentInstances, type HeldRequest, type InstanceInfo } from './persistent-instances.js';
import type { RemoteSnapshot } from './remote-snapshot.js';
import type { SnapshotImage } from './snapshot-image.js';
import { snapshotHolding, SnapshotTable } from './snapshot-table.js';
import { taskStepsTo, type TaskSource } from './task-source.js';
import { ownCopy, type ToThread } from './thread-messages.js';
import { ThreadScheduler, type ThreadChannelOptions } from './thread-scheduler.js';
import { cells, KEY, newKeyCells, type Cells } from './thread-call-cells.js';
import type { FromThread } from './thread-messages.js';

export { GuestCallError, type CallResult, type GuestLimits, type GuestLogLine, type HttpRequestData, type PagerMode, type WarmInfo } from './call-types.js';
export type { HeldRequest, InstanceInfo } from './persistent-instances.js';
export type { MigrationFinal, MigrationRound } from './instance-migration.js';
export type { MigrationMode } from './migration-ops.js';
export type { RemoteSnapshot } from './remote-snapshot.js';
export { MAX_QUEUED_CALLS, type ThreadChannelOptions } from './thread-scheduler.js';

/** What a call read by a guest thread from its own connection logged (GuestPool.onChannelLogs). */
export type ChannelLogs = Extract<FromThread, { type: 'channel-logs' }>;

/** The pager mode asked for, or the best this machine has; refuses 'native' where it cannot work. */
function choosePager(wanted: PagerMode | undefined): { mode: PagerMode; pager?: NativePager } {
  if (wanted === 'portable') return { mode: 'portable' };
  const status = nativePagerStatus();
  if (status.copyOnWrite && (status.available || wanted === 'native')) return { mode: 'native', pager: loadNativePager() };
  if (wanted === 'native') throw new Error(`the native pager cannot make copy-on-write clones here: ${status.reason}`);
  return { mode: 'portable' };
}

export class GuestPool {
  /** Its threads and the jobs they run (tests reach a thread through it). */
  readonly scheduler: ThreadScheduler;
  private readonly snapshots: SnapshotTable;
  private readonly persistent: PersistentInstances;
  private readonly migrations: InstanceMigrationSteps;
  private closing: Promise<void> | undefined;
  /** Each key's shared cells for the calls threads read themselves: whether it is served, when such a call last ended. */
  private readonly keyCells = new Map<string, { id: number; buffer: SharedArrayBuffer; cells: Cells }>();
  private nextKeyId = 1;
  private channelLogs: ((logs: ChannelLogs) => void) | undefined;

  private constructor(
    private readonly limits: GuestLimits,
    log: Logger,
    /** How snapshots are kept and clones made. */
    readonly pager: PagerMode,
    native: NativePager | undefined,
    maxGuestMemoryBytes: number | undefined,
    budget: MemoryBudget | undefined,
    maxInstanceThreads: number,
    channels: ThreadChannelOptions | undefined,
  ) {
    this.scheduler = new ThreadScheduler(limits, pager, native, maxInstanceThreads, log, {
      callThreadStarted: (thread) => this.snapshots.loadAll(thread),
      threadExited: (thread) => this.snapshots.holderGone(thread),
      snapshotDropped: (thread, snapshotId) => this.snapshots.dropped(thread, snapshotId),
      snapshotOrphaned: (snapshot) => this.snapshots.freeMemory(snapshot.memory),
      instancesLost: (thread, reason) => this.persistent.lostWith(thread, reason),
      channelLogs: (logs) => this.channelLogs?.(logs),
    }, channels);
    this.snapshots = new SnapshotTable(this.scheduler, limits, native, maxGuestMemoryBytes, budget, channels && ((key) => {
      const { id, buffer } = this.cellsOf(key);
      return { id, buffer };
    }));
    this.persistent = new PersistentInstances(this.scheduler, this.snapshots, limits, budget, log);
    this.migrations = new InstanceMigrationSteps(this.persistent, budget);
  }

  /**
   * Starts all call threads ahead of the calls; resolves once every one is running.
   * `pager` defaults to 'native' where the native pager works here (see nativePagerStatus).
   */
  static async start(opts: {
    threads: number; limits: GuestLimits; log: Logger; pager?: PagerMode;
    /** FLURRY_MAX_GUEST_MEMORY: no module declaring more memory is compiled here. */
    maxGuestMemoryBytes?: number;
    /** The host's memory budget: warm snapshots and instances are admitted and counted by it. */
    budget?: MemoryBudget;
    /** FLURRY_INSTANCE_THREADS: most threads holding instances, started as needed (default from the machine's memory). */
    instanceThreads?: number;
    /** Call threads that read their own calls (thread-channel.ts): each listens on a free port of `listenHost`. */
    threadChannels?: ThreadChannelOptions;
  }): Promise<GuestPool> {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new RangeError(`a guest pool needs at least one thread, got ${opts.threads}`);
    const instanceThreads = opts.instanceThreads ?? defaultInstanceThreads(totalmem(), opts.budget?.budgetBytes ?? totalmem() / 2);
    if (!Number.isInteger(instanceThreads) || instanceThreads < 0) throw new RangeError(`instance threads must be a whole number, got ${instanceThreads}`);
    const { mode, pager } = choosePager(opts.pager);
    const pool = new GuestPool(opts.limits, opts.log, mode, pager, opts.maxGuestMemoryBytes, opts.budget, instanceThreads, opts.threadChannels);
    try {
      await pool.scheduler.start(opts.threads);
    } catch (err) {
      await pool.close(0);
      throw err;
    }
    return pool;
  }

  /** The id a warm key's snapshot has in the memory budget (for its owner to make it evictable). */
  static snapshotHolding(key: string): string {
    return snapshotHolding(key);
  }

  /** Calls in flight (warms included, and the calls threads read from their own connections). */
  get running(): number {
    return this.scheduler.running + this.scheduler.ownCalls();
  }

  // Calls that call threads read from their own connections (thread-channel.ts).

  /** Lets the call threads take connections that say this token (its sha256, as the host's own channel keeps it). */
  grantToken(digest: Uint8Array): void {
    this.scheduler.grantToken(digest);
  }

  /** The ports the call threads read their own calls on now (none unless the pool was started with threadChannels). */
  threadPorts(): number[] {
    return this.scheduler.threadPorts();
  }

  /** Whether call threads may answer calls of `key` from their own connections (the host serves that version now). */
  setServed(key: string, served: boolean): void {
    Atomics.store(this.cellsOf(key).cells, KEY.served, served ? 1n : 0n);
  }

  /** Calls of `key` that threads read themselves and run now, and when the last one ended (epoch ms; 0: none yet). */
  ownCalls(key: string): { running: number; lastEnded: number } {
    const held = this.keyCells.get(key);
    if (!held) return { running: 0, lastEnded: 0 };
    return { running: this.scheduler.ownCalls(held.id), lastEnded: Number(Atomics.load(held.cells, KEY.lastEnded)) };
  }

  /** Tells `listener` what each call read by a thread from its own connection logged (only calls that logged). */
  onChannelLogs(listener: (logs: ChannelLogs) => void): void {
    this.channelLogs = listener;
  }

  /** `key`'s shared cells, made on first use. */
  private cellsOf(key: string): { id: number; buffer: SharedArrayBuffer; cells: Cells } {
    let held = this.keyCells.get(key);
    if (!held) {
      const buffer = newKeyCells();
      held = { id: this.nextKeyId++, buffer, cells: cells(buffer) };
      this.keyCells.set(key, held);
    }
    return held;
  }

  /** Calls waiting for a free thread. */
  get queued(): number {
    return this.scheduler.queued;
  }

  /** Call threads (the host's guest slots), counting replacements that are still starting. */
  get size(): number {
    return this.scheduler.callThreadCount;
  }

  /** Instance threads given to tenants (not the one started ahead), counting those still starting. */
  get instanceThreadCount(): number {
    return this.scheduler.tenantThreads().length;
  }

  /** See ThreadScheduler.reserveInstanceThread: a thread of `tenant`'s kept until `release`. */
  reserveInstanceThread(tenant: string): () => void {
    return this.scheduler.reserveInstanceThread(tenant);
  }

  // Snapshots.

  /** True when calls can be made on the key: a warm parent's snapshot or an adopted one. */
  has(key: string): boolean {
    return this.snapshots.get(key) !== undefined;
  }

  /** Keys of parents warmed here (not adopted snapshots). */
  warmKeys(): string[] {
    return this.snapshots.warmKeys();
  }

  /**
   * Compiles both variants of the module once, runs the parent's init in one
   * thread, snapshots it and gives the snapshot to every thread. Concurrent
   * warms of one key share one promise; warming a key that is already warm
   * answers its WarmInfo (evict first to warm it again). `tenant` owns the
   * key: its instances live on that tenant's instance threads only.
   */
  warm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array = new Uint8Array(0), callId?: string, tenant = ''): Promise<WarmInfo> {
    return this.snapshots.warm(key, moduleBytes, initInput, callId, tenant);
  }

  /**
   * Makes clones of a snapshot whose parent lives on another host: from the
   * host's page store, lazily (native pager), or from its bytes, copied. The
   * module is rewritten and compiled once per digest. Release it with
   * releaseSnapshot.
   */
  adoptSnapshot(key: string, snapshot: RemoteSnapshot): Promise<void> {
    return this.snapshots.adopt(key, snapshot);
  }

  /**
   * The snapshot of a warm parent (or one adopted by copy), for the host's
   * descriptor and memory server. Its `read` never touches guest memory.
   */
  snapshotImage(key: string): SnapshotImage {
    return this.snapshots.image(key);
  }

  /**
   * Drops a key's snapshot (warm or adopted) from every thread, and its
   * persistent instances first. Calls already running finish; later ones
   * fail with not_found. Resolves once no thread holds anything of it: its
   * memfd is closed, and no clone is registered with its page store any more
   * (the host may drop the store then).
   */
  evict(key: string): Promise<void> {
    // A lazy instance is registered with the snapshot's page store.
    this.persistent.destroyAllOf(key);
    return this.snapshots.evict(key);
  }

  /** Drops an adopted or warm snapshot: the same as evict. */
  releaseSnapshot(key: string): Promise<void> {
    return this.evict(key);
  }

  // Calls: each in a fresh clone of the key's snapshot, on the next free call thread.

  /** `limits`: the function's own (InvokeRequest.limits); its output limit never above the pool's. */
  handle(key: string, request: HttpRequestData, callId: string, limits: InvokeLimits = {}): Promise<CallResult> {
    const { body, method, path, query, headers } = request;
    return this.call(key, 'handle', [], body, callId, { method, path, query, headers }, undefined, undefined, limits.timeoutMs, limits.outputBytes);
  }

  /** `onStarted` is called once the clone runs: its instance is ready and `on_restore` has returned. */
  run(key: string, index: number, count: number, input: Uint8Array, callId: string, onProgress?: (done: number, total: number) => void, onStarted?: () => void, timeoutMs?: number): Promise<CallResult> {
    return this.call(key, 'run', [index, count], input, callId, undefined, onProgress, onStarted, timeoutMs);
  }

  /** A task clone: `run_task(task, tasks)` in one instance for each task `source` hands it (docs/guest-abi.md, "Tasks"). */
  runTasks(key: string, tasks: number, input: Uint8Array, callId: string, source: TaskSource, onStarted?: () => void, timeoutMs?: number): Promise<CallResult> {
    return this.call(key, 'run_task', [tasks], input, callId, undefined, undefined, onStarted, timeoutMs, undefined, source);
  }

  /** `input` is the clones' outputs framed as in docs/guest-abi.md (see frameReduceInput). */
  reduce(key: string, count: number, input: Uint8Array, callId: string, timeoutMs?: number): Promise<CallResult> {
    return this.call(key, 'reduce', [count], input, callId, undefined, undefined, undefined, timeoutMs);
  }

  private call(
    key: string,
    entry: EntryPoint,
    args: number[],
    input: Uint8Array,
    callId: string,
    request?: Extract<ToThread, { type: 'call' }>['request'],
    onProgress?: (done: number, total: number) => void,
    onStarted?: () => void,
    /** This call's time limit instead of the pool's (a job's clones carry their own). */
    timeoutMs?: number,
    /** This call's output limit, at most the pool's. */
    outputBytes?: number,
    tasks?: TaskSource,
  ): Promise<CallResult> {
    if (this.closing) return Promise.reject(new FlurryError('unavailable', 'the guest pool is closing'));
    if (!this.snapshots.get(key)) return Promise.reject(new FlurryError('not_found', `${key} is not warm on this host`));
    const own = ownCopy(input);
    return this.scheduler.submit({
      message: {
        type: 'call', id: this.scheduler.messageId(), key, entry, args, input: own, request, notifyStart: onStarted !== undefined,
        ...(outputBytes !== undefined && { maxOutputBytes: Math.min(outputBytes, this.limits.maxOutputBytes) }),
      },
      transfer: [own.buffer],
      timeoutMs: timeoutMs ?? this.limits.callTimeoutMs,
      what: 'call',
      key,
      callId,
      onProgress,
      onStarted,
      ...(tasks && { onTask: taskStepsTo(tasks) }),
    }).then((answer) => {
      if (answer.type !== 'result') throw new FlurryError('internal', `unexpected answer ${answer.type} to a call`);
      // The thread throttles progress messages; the last report always reaches the callback.
      if (answer.progress) onProgress?.(answer.progress.done, answer.progress.total);
      // The thread's message is the result (not copied: its `type` and `id` ride along unread).
      return answer;
    });
  }

  /**
   * Fails every queued and running call of a key with `error` (say its pages
   * will never come): running ones end with their threads, which are replaced
   * (a thread asleep in a fault is released first). The snapshot stays.
   * With `callIds`, only the calls with one of these ids (one job's clones,
   * when several jobs share a kept parent).
   */
  abort(key: string, error: Error, callIds?: ReadonlySet<string>): void {
    const reason = error instanceof FlurryError ? error : new FlurryError('unavailable', error.message);
    this.scheduler.abort((j) => j.key === key && (callIds === undefined || (j.callId !== undefined && callIds.has(j.callId))), reason);
  }

  // Persistent instances.

  /**
   * Makes a persistent (service) instance of a warm or adopted key: a clone of
   * its snapshot (copy-on-write from the memfd with the native pager, a copy
   * otherwise; `on_restore` runs once) on one of its tenant's instance
   * threads, that stays alive until destroyInstance — or until its thread
   * dies (a request timing out terminates the thread).
   */
  createInstance(key: string, callId?: string): Promise<string> {
    return this.persistent.create(key, callId);
  }

  /**
   * Runs `handle` on a persistent instance: its memory and globals persist
   * between requests. Requests to one instance run one at a time in arrival
   * order; its thread serves other work between them. A trap fails the
   * request (guest_trap) and leaves the instance usable; a timeout terminates
   * the thread and destroys every instance in it.
   */
  instanceHandle(instanceId: string, request: HttpRequestData, callId: string, limits?: InvokeLimits): Promise<CallResult> {
    return this.persistent.handle(instanceId, request, callId, limits);
  }

  /** Ends a persistent instance; requests queued for it fail with not_found. Unknown ids are ignored. */
  destroyInstance(instanceId: string): void {
    this.persistent.destroy(instanceId);
  }

  /** The persistent instances alive in this pool. */
  instances(): InstanceInfo[] {
    return this.persistent.list();
  }

  /** Tells `listener` of every persistent instance destroyed with its thread (not those destroyed on request). */
  onInstanceGone(listener: (instanceId: string, reason: string) => void): void {
    this.persistent.onGone(listener);
  }

  // Live migration, source side (migration/instance-source.ts drives these).

  /**
   * Starts dirty tracking of an instance's memory in its thread: 'async'
   * (UFFD WP_ASYNC + PAGEMAP_SCAN, the default), 'sync' (write-protect
   * faults) — both need the native pager — or 'compare' (each page against
   * the copy last sent). The instance goes on serving. `fromParent`: it can
   * tell the pages it wrote since its fork (a copy-on-write clone, natively tracked).
   */
  beginMigration(instanceId: string, opts: { mode?: MigrationMode } = {}): Promise<{ fromParent: boolean; memoryBytes: number }> {
    return this.migrations.begin(instanceId, opts.mode ?? 'async');
  }

  /**
   * A pre-copy round: round 0 every non-zero page (`fromParent`: only those written since the fork, where
   * beginMigration said it can), later rounds the pages written since the previous one; each in slices
   * (`more` until the round's last: call again). `reuse`: the buffer of a slice already sent (transferred back
   * to the thread, detached here), read into instead of a new one.
   */
  migrationRound(instanceId: string, opts: { fromParent?: boolean; reuse?: ArrayBuffer } = {}): Promise<MigrationRound> {
    return this.migrations.round(instanceId, opts.fromParent === true, opts.reuse);
  }

  /**
   * Stops the instance taking requests (later ones are held, not refused),
   * waits for those already queued, and returns the last dirty pages and the
   * globals. Tracking ends. Follow with commitMigration or abortMigration.
   */
  stopAndCopy(instanceId: string, opts: { fromParent?: boolean; reuse?: ArrayBuffer } = {}): Promise<MigrationFinal> {
    return this.migrations.stopAndCopy(instanceId, opts.fromParent === true, opts.reuse);
  }

  /**
   * The requests a stopped instance holds so far, in arrival order, left held (handed to the target with the
   * commit; commitMigration or abortMigration settles them).
   */
  heldRequests(instanceId: string): HeldRequest[] {
    return this.migrations.held(instanceId);
  }

  /**
   * The target has the instance: hands back the requests held since stop-and-copy, in arrival order. The
   * source's copy stays stopped until destroyInstance (after the pause: freeing it is no part of it).
   */
  commitMigration(instanceId: string): HeldRequest[] {
    return this.migrations.commit(instanceId);
  }

  /** The target failed before commit: tracking stops and the source serves again, the held requests first. */
  abortMigration(instanceId: string): Promise<void> {
    return this.migrations.abort(instanceId);
  }

  // Live migration, target side (migration/instance-target.ts and the NATS receiver drive these).

  /**
   * Makes an instance of a warm or adopted key (no on_restore) to receive pages into: round 0 is its whole
   * content (the snapshot's pages it does not cover are cleared), or with `fromParent` what differs from this
   * key's snapshot, which must then be the source's parent byte for byte.
   */
  receiveInstance(key: string, opts: { memoryBytes: number; fromParent?: boolean }): Promise<string> {
    return this.migrations.receive(key, opts.memoryBytes, opts.fromParent === true);
  }

  /** Writes received pages (PAGE_SIZE bytes each) into an instance being received; grows its memory to memoryBytes. */
  applyPages(instanceId: string, pages: Uint32Array, bytes: Uint8Array, memoryBytes?: number): Promise<void> {
    return this.migrations.apply(instanceId, pages, bytes, memoryBytes);
  }

  /**
   * Sets the received globals, after the `last` pages if given (one step in the thread for the end of a
   * migration), and lets the instance serve: the same server going on (no on_restore). Answers the pages
   * written into it in all (the migration's invariant: as many as the source sent) as soon as the step is
   * queued on its thread; requests meanwhile wait for it; `finished` resolves once it ran (see
   * InstanceMigrationSteps.finish: a step that failed destroys the instance).
   */
  finishReceive(instanceId: string, globals: Record<string, GlobalValue>, last?: MigrationRound): Promise<{ pagesApplied: number; finished: Promise<void> }> {
    return this.migrations.finish(instanceId, globals, last);
  }

  /**
   * Round 0 is all here: clears the key's snapshot pages it did not cover
   * (the source's zero pages). finishReceive does it too if it was not done.
   */
  settleReceive(instanceId: string): Promise<void> {
    return this.migrations.settle(instanceId);
  }

  /**
   * Target side, after round 0: a full garbage collection of its page buffers in the instance's thread (which
   * serves nothing of it yet) and in this one, out of the pause.
   */
  quiesceMigration(instanceId: string): Promise<void> {
    return this.migrations.quiesce(instanceId);
  }

  /** SHA-256 of an instance's linear memory, read in its thread between requests (to check a migration). */
  instanceMemoryHash(instanceId: string): Promise<{ hash: string; memoryBytes: number }> {
    return this.migrations.memoryHash(instanceId);
  }

  /**
   * Refuses new calls and fails queued ones with `unavailable`, waits for
   * calls in flight (at most `graceMs`), then terminates every thread.
   */
  close(graceMs = this.limits.callTimeoutMs): Promise<void> {
    this.closing ??= this.scheduler.close(graceMs).then(() => {
      this.persistent.clear();
      return this.snapshots.releaseAll();
    });
    return this.closing;
  }
}
