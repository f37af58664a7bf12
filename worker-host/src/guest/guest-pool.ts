/**
 * The pool of guest threads that the host's main process runs every guest
 * call through: warms parents and snapshots them, adopts snapshots of parents
 * on other hosts, forks a fresh clone for every call, queues calls (FIFO) for
 * free threads, enforces the time limits from this thread (a guest in an
 * endless loop cannot answer messages), and replaces threads that time out
 * or crash.
 *
 * Persistent (service) instances live on instance threads of their own, one
 * tenant's each, given out as needed (one is kept started ahead) and stopped
 * when empty (instance-threads.ts): a timeout tears its thread down with
 * every instance in it, and the call threads hold none. Every module is checked against
 * FLURRY_MAX_GUEST_MEMORY before it is compiled, and warm snapshots and
 * instances count against the host's memory budget.
 */
import { totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FlurryError, type ErrorCode, type Logger } from '@flurry/core';
import { loadNativePager, nativePagerStatus, type NativePager } from '../native/pager.js';
import { adoptedSnapshot, checkAdopted, type AdoptedSnapshot } from './adopted-snapshot.js';
import { FifoQueue } from './fifo-queue.js';
import type { EntryPoint, Snapshot } from './instance.js';
import { compile, ModuleVariantsCache, type ModuleVariants } from './module-variants.js';
import { RegistrationSlot, terminateGuestThread } from './registration-slot.js';
import { describeGlobals, snapshotImage, type SnapshotImage } from './snapshot-image.js';
import type { GlobalValue } from './instance.js';
import type { MigrationMode, MigrationOp, MigrationOpResult } from './migration-ops.js';
import type { MemoryStats, SnapshotMemory } from './snapshot-memory.js';
import { SnapshotRegistry, type HeldSnapshot } from './snapshot-registry.js';
import { StallClock } from './stall-clock.js';
import type { FromThread, GuestThreadData, ToThread } from './thread-messages.js';
import { guestThreadScript } from './worker-script.js';
import { collectGarbage } from '../collect-garbage.js';
import type { MemoryBudget } from '../memory-budget.js';
import { checkGuestMemory } from './guest-memory-cap.js';
import { chooseInstanceThread, defaultInstanceThreads } from './instance-threads.js';

export type { AdoptedSnapshot } from './adopted-snapshot.js';

/**
 * How snapshots are kept and clones made: 'native' maps snapshots
 * copy-on-write from memfds and pages adopted snapshots lazily through
 * userfaultfd (worker-host/native); 'portable' copies.
 */
export type PagerMode = 'native' | 'portable';

export interface GuestLimits {
  callTimeoutMs: number;
  initTimeoutMs: number;
  maxOutputBytes: number;
  maxLogLines: number;
  maxLogBytes: number;
}

export interface HttpRequestData {
  method: string;
  path: string;
  query: string;
  headers: [string, string][];
  body: Uint8Array;
}

export interface GuestLogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface CallResult {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  logs: GuestLogLine[];
  droppedLogLines: number;
  /** Time in the guest thread: instantiating from the snapshot, restoring it and running the entry point. */
  durationMs: number;
  /** From the guest thread picking the call up to the clone running (instance ready, `on_restore` returned). */
  startMs: number;
  /** How the clone's memory was made and what paging it cost. */
  memory?: MemoryStats;
  /** The last progress a `run` reported. */
  progress?: { done: number; total: number };
}

export interface WarmInfo {
  initMs: number;
  memoryBytes: number;
  /** Mutable globals in the snapshot. */
  globals: number;
  /** What `_initialize` and `init` logged. */
  logs: GuestLogLine[];
  droppedLogLines: number;
}

/** A failed guest call or init: a FlurryError that also carries what the guest logged before it failed. */
export class GuestCallError extends FlurryError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly logs: GuestLogLine[],
    readonly droppedLogLines: number,
  ) {
    super(code, message);
  }
}

/** Calls waiting for a thread beyond this are refused with no_capacity. */
export const MAX_QUEUED_CALLS = 10_000;
/** A thread that dies before it ever started is replaced after this delay, so a broken build cannot spin. */
const RESPAWN_DELAY_MS = 1000;

type Answer = Extract<FromThread, { type: 'warmed' | 'result' | 'created' | 'migrated' }>;

interface Job {
  message: Extract<ToThread, { type: 'warm' | 'call' | 'instance-create' | 'instance-call' | 'instance-migrate' }>;
  transfer: ArrayBuffer[];
  timeoutMs: number;
  /** When it went to its thread (performance.now()): its time limit counts from here, less the process's own stops. */
  dispatchedAt?: number;
  /** For messages: "call" or "init". */
  what: string;
  key: string;
  callId?: string;
  /** A persistent instance's request or creation: pinned to the instance's thread. */
  instanceId?: string;
  /** Called when the job goes to its thread. */
  onDispatch?: () => void;
  /** A request to an instance: hands it to the instance's held requests instead (taken out of the queue at stop-and-copy). */
  hold?: () => void;
  onProgress?: (done: number, total: number) => void;
  onStarted?: () => void;
  resolve(answer: Answer): void;
  reject(err: FlurryError): void;
}

interface GuestThread {
  worker: Worker;
  /** The lazy-memory registration of its running call, to release it from a fault before terminating it. */
  slot: RegistrationSlot;
  job?: Job;
  timer?: NodeJS.Timeout;
  online: boolean;
  /** Terminated on purpose (timeout, close): its exit is expected. */
  retired: boolean;
  lastError?: Error;
  /** Settles once it runs (or failed to start). */
  started: Promise<void>;
  /** An instance thread's instances; none on a call thread. */
  holding?: Holding;
}

/** What an instance thread holds: one tenant's persistent instances and the jobs waiting for them. */
interface Holding {
  /** Undefined on the thread started ahead, until a tenant takes it. */
  tenant?: string;
  /** Ids of the instances living in it. */
  instances: Set<string>;
  /** Instances being made or received in it (not in `instances` yet). */
  claims: number;
  /** Jobs of its instances, in arrival order. */
  pinned: FifoQueue<Job>;
}

type InstanceThread = GuestThread & { holding: Holding };

function isInstanceThread(thread: GuestThread): thread is InstanceThread {
  return thread.holding !== undefined;
}

/** A persistent (service) instance: a clone of a warm parent that keeps its memory between requests. */
export interface InstanceInfo {
  instanceId: string;
  key: string;
  createdAt: number;
  /** Requests answered or failed so far. */
  requests: number;
  /** While it migrates away ('source': pre-copy, or 'stopped' for stop-and-copy) or is being received ('target'). */
  migrating?: 'source' | 'stopped' | 'target';
}

interface PoolInstance extends InstanceInfo {
  thread: InstanceThread;
  /** Its linear memory's size, as of its last request (what it holds of the host's memory budget). */
  memoryBytes: number;
  /** Set while it migrates away (source) or is being received (target: `applied` pages written into it so far). */
  migration?: { role: 'source' | 'target'; stopped: boolean; held: HeldRequest[]; applied: number };
}

export type { MigrationMode } from './migration-ops.js';

/** Round 0 reads at most this many pages (8 MiB) between two requests of the instance. */
const ROUND_SLICE_PAGES = 2048;
export { MIGRATION_PAGE } from './migration-ops.js';

/** Pages of a pre-copy round: `bytes` holds MIGRATION_PAGE bytes per page, in the order of `pages`. */
export interface MigrationRound {
  pages: Uint32Array;
  bytes: Uint8Array;
  /** The instance's memory size when the round was read. */
  memoryBytes: number;
  /** Round 0 goes on: this was one slice of it (the instance serves between slices). */
  more?: boolean;
}

/** The last round, read after the instance stopped taking requests, with its mutable globals. */
export interface MigrationFinal extends MigrationRound {
  globals: Record<string, GlobalValue>;
  /** The dirty scan and copy in the instance's thread. */
  readMs: number;
  /** Waiting for the thread: the request in progress, if any. */
  waitMs: number;
}

/**
 * A request that reached a migrating instance after stop-and-copy: held, then
 * handed back by commitMigration (forward it to the target and settle it with
 * `forward`) or run on the source again by abortMigration.
 */
export interface HeldRequest {
  request: HttpRequestData;
  callId: string;
  /** Settles the caller's instanceHandle promise with the answer from wherever the request was forwarded to. */
  forward(answer: Promise<CallResult>): void;
}

/** A warm parent's WarmInfo; adopted snapshots have none. */
type Held = HeldSnapshot<GuestThread, WarmInfo | undefined>;

/** A key being warmed or adopted. */
interface Pending {
  kind: 'warm' | 'adopt';
  promise: Promise<unknown>;
  evicted: boolean;
}

/** A copy with a buffer of its own, which can be transferred to a thread without detaching the caller's bytes. */
function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** The pager mode asked for, or the best this machine has; refuses 'native' where it cannot work. */
function choosePager(wanted: PagerMode | undefined): { mode: PagerMode; pager?: NativePager } {
  if (wanted === 'portable') return { mode: 'portable' };
  const status = nativePagerStatus();
  if (status.copyOnWrite && (status.available || wanted === 'native')) return { mode: 'native', pager: loadNativePager() };
  if (wanted === 'native') throw new Error(`the native pager cannot make copy-on-write clones here: ${status.reason}`);
  return { mode: 'portable' };
}

export class GuestPool {
  /** Call threads and instance threads, counting replacements that are still starting. */
  private readonly threads = new Set<GuestThread>();
  /** Free call threads, most recently used last (its caches are the warmest). */
  private readonly idle: GuestThread[] = [];
  private readonly queue = new FifoQueue<Job>();
  private readonly snapshots = new SnapshotRegistry<GuestThread, WarmInfo | undefined>((held) => this.free(held));
  private readonly pending = new Map<string, Pending>();
  private readonly modules = new ModuleVariantsCache();
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private readonly script = guestThreadScript();
  private nextId = 1;
  /** An instance thread started ahead for the next tenant that needs one: a thread takes about 150 ms to boot. */
  private spareInstanceThread: InstanceThread | undefined;
  private readonly liveInstances = new Map<string, PoolInstance>();
  private nextInstance = 1;
  private readonly stalls = new StallClock();
  /** The tenant of every key warm, adopted, or being warmed or adopted. */
  private readonly keyTenants = new Map<string, string>();
  private readonly instanceGoneListeners: ((instanceId: string, reason: string) => void)[] = [];
  private inFlight = 0;
  private closing: Promise<void> | undefined;
  private allIdle: (() => void) | undefined;

  private constructor(
    private readonly limits: GuestLimits,
    private readonly log: Logger,
    /** How snapshots are kept and clones made. */
    readonly pager: PagerMode,
    private readonly native: NativePager | undefined,
    private readonly maxGuestMemoryBytes: number | undefined,
    private readonly budget: MemoryBudget | undefined,
    private readonly maxInstanceThreads: number,
  ) {}

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
  }): Promise<GuestPool> {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new RangeError(`a guest pool needs at least one thread, got ${opts.threads}`);
    const instanceThreads = opts.instanceThreads ?? defaultInstanceThreads(totalmem(), opts.budget?.budgetBytes ?? totalmem() / 2);
    if (!Number.isInteger(instanceThreads) || instanceThreads < 0) throw new RangeError(`instance threads must be a whole number, got ${instanceThreads}`);
    const { mode, pager } = choosePager(opts.pager);
    const pool = new GuestPool(opts.limits, opts.log, mode, pager, opts.maxGuestMemoryBytes, opts.budget, instanceThreads);
    try {
      await Promise.all(Array.from({ length: opts.threads }, () => pool.spawn().started));
    } catch (err) {
      await pool.close(0);
      throw err;
    }
    pool.keepSpareInstanceThread();
    return pool;
  }

  /** Calls in flight (warms included). */
  get running(): number {
    return this.inFlight;
  }

  /** Calls waiting for a free thread. */
  get queued(): number {
    return this.queue.length;
  }

  /** Call threads (the host's guest slots), counting replacements that are still starting. */
  get size(): number {
    return this.threads.size - this.instanceThreads().length;
  }

  /** Instance threads given to tenants (not the one started ahead), counting those still starting. */
  get instanceThreadCount(): number {
    return this.tenantThreads().length;
  }

  /** True when calls can be made on the key: a warm parent's snapshot or an adopted one. */
  has(key: string): boolean {
    return this.snapshots.get(key) !== undefined;
  }

  /** Keys of parents warmed here (not adopted snapshots). */
  warmKeys(): string[] {
    return this.snapshots.keys('warm');
  }

  /**
   * Compiles both variants of the module once, runs the parent's init in one
   * thread, snapshots it and gives the snapshot to every thread. Concurrent
   * warms of one key share one promise; warming a key that is already warm
   * answers its WarmInfo (evict first to warm it again). `tenant` owns the
   * key: its instances live on that tenant's instance threads only.
   */
  warm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array = new Uint8Array(0), callId?: string, tenant = ''): Promise<WarmInfo> {
    const held = this.snapshots.get(key);
    if (held?.info) return Promise.resolve(held.info);
    const pending = this.pending.get(key);
    if (pending?.kind === 'warm') return pending.promise as Promise<WarmInfo>;
    if (held || pending) return Promise.reject(new FlurryError('bad_request', `${key} holds a snapshot adopted from another host`));
    this.keyTenants.set(key, tenant);
    return this.reserve(key, 'warm', (p) => this.doWarm(key, moduleBytes, initInput, callId, p));
  }

  /**
   * Makes clones of a snapshot whose parent lives on another host: from the
   * host's page store, lazily (native pager), or from its bytes, copied. The
   * module is rewritten and compiled once per digest. Release it with
   * releaseSnapshot.
   */
  adoptSnapshot(key: string, snapshot: AdoptedSnapshot): Promise<void> {
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
      const answer = await this.submit({
        message: { type: 'warm', id: this.nextId++, parent, initInput: input },
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
      this.budget?.track(GuestPool.snapshotHolding(key), { kind: 'snapshot', bytes: () => bytes });
      return info;
    } catch (err) {
      if (snapshot) this.freeMemory(snapshot.memory);
      this.modules.release(variants);
      throw err;
    } finally {
      admitted?.done();
    }
  }

  /** The id a warm key's snapshot has in the memory budget (for its owner to make it evictable). */
  static snapshotHolding(key: string): string {
    return `snapshot:${key}`;
  }

  private static instanceHolding(instanceId: string): string {
    return `instance:${instanceId}`;
  }

  /** Refuses a module declaring more memory than FLURRY_MAX_GUEST_MEMORY; answers its initial memory in bytes. */
  private checkMemory(moduleBytes: Uint8Array): number {
    return this.maxGuestMemoryBytes === undefined ? 0 : checkGuestMemory(moduleBytes, this.maxGuestMemoryBytes);
  }

  private async doAdopt(key: string, adopted: AdoptedSnapshot, pending: Pending): Promise<void> {
    checkAdopted(adopted, this.native);
    this.checkMemory(adopted.moduleBytes);
    const variants = await this.modules.acquire(adopted.moduleBytes);
    try {
      const snapshot = adoptedSnapshot(adopted, variants);
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
    for (const thread of this.threads) if (!isInstanceThread(thread)) this.load(thread, held);
  }

  private load(thread: GuestThread, held: Held): void {
    held.holders.add(thread);
    thread.worker.postMessage({ type: 'load', key: held.key, snapshotId: held.id, clone: held.variants.clone, snapshot: held.snapshot, stackPointer: held.variants.stackPointer } satisfies ToThread);
  }

  /**
   * The snapshot of a warm parent (or one adopted by copy), for the host's
   * descriptor and memory server. Its `read` never touches guest memory.
   */
  snapshotImage(key: string): SnapshotImage {
    const held = this.snapshots.get(key);
    if (!held) throw new FlurryError('not_found', `${key} holds no snapshot on this host`);
    const { variants, snapshot } = held;
    const described = { maximumPages: variants.maximumPages, globals: describeGlobals(snapshot.globals, variants.globalTypes), moduleDigest: variants.digest };
    return snapshotImage(snapshot, described, () => held.released);
  }

  handle(key: string, request: HttpRequestData, callId: string): Promise<CallResult> {
    const { body, method, path, query, headers } = request;
    return this.call(key, 'handle', [], body, callId, { method, path, query, headers });
  }

  /** `onStarted` is called once the clone runs: its instance is ready and `on_restore` has returned. */
  run(key: string, index: number, count: number, input: Uint8Array, callId: string, onProgress?: (done: number, total: number) => void, onStarted?: () => void, timeoutMs?: number): Promise<CallResult> {
    return this.call(key, 'run', [index, count], input, callId, undefined, onProgress, onStarted, timeoutMs);
  }

  /** `input` is the clones' outputs framed as in docs/guest-abi.md (see frameReduceInput). */
  reduce(key: string, count: number, input: Uint8Array, callId: string, timeoutMs?: number): Promise<CallResult> {
    return this.call(key, 'reduce', [count], input, callId, undefined, undefined, undefined, timeoutMs);
  }

  private async call(
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
  ): Promise<CallResult> {
    if (this.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    if (!this.snapshots.get(key)) throw new FlurryError('not_found', `${key} is not warm on this host`);
    const own = ownCopy(input);
    const answer = await this.submit({
      message: { type: 'call', id: this.nextId++, key, entry, args, input: own, request, notifyStart: onStarted !== undefined },
      transfer: [own.buffer],
      timeoutMs: timeoutMs ?? this.limits.callTimeoutMs,
      what: 'call',
      key,
      callId,
      onProgress,
      onStarted,
    });
    if (answer.type !== 'result') throw new FlurryError('internal', `unexpected answer ${answer.type} to a call`);
    const { status, headers, body, logs, droppedLogLines, durationMs, startMs, memory, progress } = answer;
    // The thread throttles progress messages; the last report always reaches the callback.
    if (progress) onProgress?.(progress.done, progress.total);
    return { status, headers, body, logs, droppedLogLines, durationMs, startMs, memory, progress };
  }

  /** The tenant that owns a key ('' when the caller named none). */
  private tenantOf(key: string): string {
    return this.keyTenants.get(key) ?? '';
  }

  /** Every instance thread: those of tenants and the one started ahead. */
  private instanceThreads(): InstanceThread[] {
    return [...this.threads].filter(isInstanceThread);
  }

  /** The instance threads given to tenants, with their instances (or about to hold some). */
  private tenantThreads(): InstanceThread[] {
    return this.instanceThreads().filter((t) => t.holding.tenant !== undefined);
  }

  /**
   * An instance thread and an id for a new instance of a warm or adopted key,
   * claimed for it until `settleClaim`: one of the key's tenant's threads with
   * room, or a new one (chooseInstanceThread: the one started ahead if there
   * is one), which is sent the key's snapshot if it does not hold it yet.
   */
  private placeInstance(key: string): { thread: InstanceThread; instanceId: string } {
    if (this.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const held = this.snapshots.get(key);
    if (!held) throw new FlurryError('not_found', `${key} is not warm on this host`);
    const tenant = this.tenantOf(key);
    const threads = this.tenantThreads().map((thread) => ({ thread, tenant: thread.holding.tenant!, load: thread.holding.instances.size + thread.holding.claims }));
    const chosen = chooseInstanceThread(threads, tenant, this.maxInstanceThreads);
    const thread = chosen === 'new' ? this.newInstanceThread(tenant) : chosen.thread;
    thread.holding.claims++;
    if (!held.holders.has(thread)) this.load(thread, held);
    return { thread, instanceId: `${key}#${this.nextInstance++}` };
  }

  /** An empty instance thread for `tenant`: the one started ahead (another is then started ahead), or a new one. */
  private newInstanceThread(tenant: string): InstanceThread {
    const spare = this.spareInstanceThread;
    this.spareInstanceThread = undefined;
    const thread = spare ?? this.spawnInstanceThread();
    thread.holding.tenant = tenant;
    this.keepSpareInstanceThread();
    return thread;
  }

  /**
   * Keeps an instance thread started ahead while the host runs fewer than its
   * most instance threads (the one ahead counting), so that a tenant's next
   * thread need not boot. Nothing runs in it before a tenant takes it.
   */
  private keepSpareInstanceThread(delayMs = 0): void {
    if (this.closing || this.spareInstanceThread || this.instanceThreads().length >= this.maxInstanceThreads) return;
    if (delayMs === 0) {
      this.spareInstanceThread = this.spawnInstanceThread();
      return;
    }
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      this.keepSpareInstanceThread();
    }, delayMs);
    this.respawnTimers.add(timer);
  }

  /** Starts an empty instance thread of no tenant yet; one that fails to start fails the jobs waiting for it. */
  private spawnInstanceThread(): InstanceThread {
    const thread = this.spawn({ instances: new Set(), claims: 0, pinned: new FifoQueue<Job>() }) as InstanceThread;
    thread.started.catch(() => undefined);
    return thread;
  }

  /** An instance placed on `thread` was made (`made`) or failed: its claim ends. */
  private settleClaim(thread: InstanceThread, instanceId: string, made: boolean): void {
    thread.holding.claims--;
    if (made) thread.holding.instances.add(instanceId);
    this.stopIfEmpty(thread);
  }

  /**
   * Makes a persistent (service) instance of a warm or adopted key: a clone of
   * its snapshot (copy-on-write from the memfd with the native pager, a copy
   * otherwise; `on_restore` runs once) on one of its tenant's instance
   * threads, that stays alive until destroyInstance — or until its thread
   * dies (a request timing out terminates the thread).
   */
  async createInstance(key: string, callId?: string): Promise<string> {
    const memoryBytes = this.snapshots.get(key)?.snapshot.memory.byteLength ?? 0;
    const admitted = this.budget?.admit(memoryBytes, `an instance of ${key}`);
    let placed: ReturnType<GuestPool['placeInstance']> | undefined;
    let made = false;
    try {
      placed = this.placeInstance(key);
      const { thread, instanceId } = placed;
      const answer = await this.submitTo(thread, {
        message: { type: 'instance-create', id: this.nextId++, key, instanceId },
        transfer: [],
        // A tenant's first instance on a thread loads the parent into it (module and snapshot) before on_restore:
        // start-up work, so it gets the init limit; a creation that times out ends the thread with its instances.
        timeoutMs: Math.max(this.limits.callTimeoutMs, this.limits.initTimeoutMs),
        what: 'instance creation',
        key,
        callId,
        instanceId,
      });
      if (answer.type !== 'created') throw new FlurryError('internal', `unexpected answer ${answer.type} to an instance creation`);
      if (thread.retired || this.closing) throw new FlurryError('unavailable', `instance ${instanceId} was lost with its thread`);
      this.adoptInstance({ instanceId, key, createdAt: Date.now(), requests: 0, thread, memoryBytes });
      made = true;
      return instanceId;
    } finally {
      if (placed) this.settleClaim(placed.thread, placed.instanceId, made);
      admitted?.done();
    }
  }

  /** Counts a new live instance (made here or received) against the memory budget. */
  private adoptInstance(inst: PoolInstance): void {
    this.liveInstances.set(inst.instanceId, inst);
    this.budget?.track(GuestPool.instanceHolding(inst.instanceId), { kind: 'service instance', bytes: () => inst.memoryBytes });
  }

  /**
   * Runs `handle` on a persistent instance: its memory and globals persist
   * between requests. Requests to one instance run one at a time in arrival
   * order; its thread serves other work between them. A trap fails the
   * request (guest_trap) and leaves the instance usable; a timeout terminates
   * the thread and destroys every instance in it.
   */
  async instanceHandle(instanceId: string, request: HttpRequestData, callId: string): Promise<CallResult> {
    if (this.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const inst = this.liveInstances.get(instanceId);
    if (!inst) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
    if (inst.migration?.role === 'target') throw new FlurryError('unavailable', `instance ${instanceId} is still being received`);
    return new Promise<CallResult>((resolve, reject) => {
      // Stopped for stop-and-copy: held until the migration commits (forwarded) or aborts (run here).
      const held: HeldRequest = { request, callId, forward: (answer) => answer.then(resolve, reject) };
      if (inst.migration?.stopped) return inst.migration.held.push(held);
      const { body, method, path, query, headers } = request;
      const own = ownCopy(body);
      this.submitTo(inst.thread, {
        message: { type: 'instance-call', id: this.nextId++, instanceId, input: own, request: { method, path, query, headers } },
        transfer: [own.buffer],
        timeoutMs: this.limits.callTimeoutMs,
        what: 'call',
        key: inst.key,
        callId,
        instanceId,
        // Still queued when the instance stops for stop-and-copy: held like the requests arriving after.
        hold: () => inst.migration?.held.push(held),
      })
        .then(
          (answer) => {
            inst.requests++;
            if (answer.type !== 'result') return reject(new FlurryError('internal', `unexpected answer ${answer.type} to an instance call`));
            if (answer.memoryBytes !== undefined) inst.memoryBytes = answer.memoryBytes;
            const { status, headers: h, body: b, logs, droppedLogLines, durationMs, startMs, memory } = answer;
            resolve({ status, headers: h, body: b, logs, droppedLogLines, durationMs, startMs, memory });
          },
          (err: unknown) => {
            inst.requests++;
            reject(err);
          },
        );
    });
  }

  /** Ends a persistent instance; requests queued for it fail with not_found. Unknown ids are ignored. */
  destroyInstance(instanceId: string): void {
    const inst = this.liveInstances.get(instanceId);
    if (!inst) return;
    this.liveInstances.delete(instanceId);
    this.budget?.untrack(GuestPool.instanceHolding(instanceId));
    const { thread } = inst;
    thread.holding.instances.delete(instanceId);
    for (const h of inst.migration?.held.splice(0) ?? []) h.forward(Promise.reject(new FlurryError('not_found', `instance ${instanceId} was destroyed`)));
    for (const job of thread.holding.pinned.extract((j) => j.instanceId === instanceId)) job.reject(new FlurryError('not_found', `instance ${instanceId} was destroyed`));
    // After the request in progress, if any: the thread reads its port in order.
    if (!thread.retired) thread.worker.postMessage({ type: 'instance-destroy', instanceId } satisfies ToThread);
    this.stopIfEmpty(thread);
  }

  // Live migration (source side). Each step is a job pinned to the instance's thread, so it runs between requests.

  /**
   * Starts dirty tracking of an instance's memory in its thread: 'async'
   * (UFFD WP_ASYNC + PAGEMAP_SCAN, the default), 'sync' (write-protect
   * faults) — both need the native pager — or 'compare' (each page against
   * the copy last sent). The instance goes on serving.
   */
  async beginMigration(instanceId: string, opts: { mode?: MigrationMode } = {}): Promise<void> {
    const inst = this.liveInstance(instanceId);
    if (inst.migration) throw new FlurryError('conflict', `instance ${instanceId} is migrating already`);
    inst.migration = { role: 'source', stopped: false, held: [], applied: 0 };
    try {
      await this.migrationOp(inst, { op: 'track', mode: opts.mode ?? 'async' });
    } catch (err) {
      inst.migration = undefined;
      throw err;
    }
  }

  /**
   * A pre-copy round: round 0 every non-zero page, in slices (`more` until the
   * last: call again), later rounds the pages written since the previous one.
   */
  async migrationRound(instanceId: string): Promise<MigrationRound> {
    const inst = this.migrating(instanceId, 'source');
    if (inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} is stopped for stop-and-copy`);
    const result = await this.migrationOp(inst, { op: 'round', maxPages: ROUND_SLICE_PAGES });
    if (result.op !== 'round') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    const { pages, bytes, memoryBytes, more } = result;
    return { pages, bytes, memoryBytes, more };
  }

  /**
   * Stops the instance taking requests (later ones are held, not refused),
   * waits for those already queued, and returns the last dirty pages and the
   * globals. Tracking ends. Follow with commitMigration or abortMigration.
   */
  async stopAndCopy(instanceId: string): Promise<MigrationFinal> {
    const inst = this.migrating(instanceId, 'source');
    if (inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} is stopped already`);
    inst.migration!.stopped = true;
    // Its requests not started yet wait with the ones arriving from now on, in order: the stop waits for one request at most.
    for (const job of inst.thread.holding.pinned.extract((j) => j.instanceId === instanceId && j.hold !== undefined)) job.hold!();
    const stopped = performance.now();
    let waitMs = 0;
    const result = await this.migrationOp(inst, { op: 'final' }, [], () => (waitMs = performance.now() - stopped));
    if (result.op !== 'final') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    const { pages, bytes, memoryBytes, globals, readMs } = result;
    return { pages, bytes, memoryBytes, globals, readMs, waitMs };
  }

  /** The target has the instance: destroys the source and hands back the requests held since stop-and-copy, in arrival order. */
  commitMigration(instanceId: string): HeldRequest[] {
    const inst = this.migrating(instanceId, 'source');
    if (!inst.migration!.stopped) throw new FlurryError('bad_request', `instance ${instanceId} has not been stopped (stopAndCopy first)`);
    const held = inst.migration!.held;
    inst.migration = undefined;
    this.destroyInstance(instanceId);
    return held;
  }

  /** The target failed before commit: tracking stops and the source serves again, the held requests first. */
  async abortMigration(instanceId: string): Promise<void> {
    const inst = this.migrating(instanceId, 'source');
    const { held } = inst.migration!;
    inst.migration = undefined;
    for (const h of held) h.forward(this.instanceHandle(instanceId, h.request, h.callId));
    await this.migrationOp(inst, { op: 'untrack' });
  }

  // Live migration (target side).

  /** Makes an empty instance of a warm or adopted key (nothing of the snapshot in its memory, no on_restore) to receive pages into. */
  async receiveInstance(key: string, opts: { memoryBytes: number }): Promise<string> {
    const admitted = this.budget?.admit(opts.memoryBytes, `an instance of ${key} migrating here`);
    let placed: ReturnType<GuestPool['placeInstance']> | undefined;
    let made = false;
    try {
      placed = this.placeInstance(key);
      const { thread, instanceId } = placed;
      const inst: PoolInstance = { instanceId, key, createdAt: Date.now(), requests: 0, thread, memoryBytes: opts.memoryBytes, migration: { role: 'target', stopped: false, held: [], applied: 0 } };
      await this.migrationOp(inst, { op: 'receive', key, memoryBytes: opts.memoryBytes });
      if (thread.retired || this.closing) throw new FlurryError('unavailable', `instance ${instanceId} was lost with its thread`);
      this.adoptInstance(inst);
      made = true;
      return instanceId;
    } finally {
      if (placed) this.settleClaim(placed.thread, placed.instanceId, made);
      admitted?.done();
    }
  }

  /** Writes received pages (MIGRATION_PAGE bytes each) into an instance being received; grows its memory to memoryBytes. */
  async applyPages(instanceId: string, pages: Uint32Array, bytes: Uint8Array, memoryBytes?: number): Promise<void> {
    const inst = this.migrating(instanceId, 'target');
    const ownPages = Uint32Array.from(pages);
    const own = ownCopy(bytes);
    // Counted before the transfer empties the array.
    const count = ownPages.length;
    await this.migrationOp(inst, { op: 'apply', pages: ownPages, bytes: own, memoryBytes }, [ownPages.buffer, own.buffer]);
    inst.migration!.applied += count;
    if (memoryBytes !== undefined) inst.memoryBytes = Math.max(inst.memoryBytes, memoryBytes);
  }

  /**
   * Sets the received globals, after the `last` pages if given (one step in the thread for the end of a
   * migration), and lets the instance serve: the same server going on (no on_restore). Answers the pages
   * written into it in all (the migration's invariant: as many as the source sent).
   */
  async finishReceive(instanceId: string, globals: Record<string, GlobalValue>, last?: MigrationRound): Promise<{ pagesApplied: number }> {
    const inst = this.migrating(instanceId, 'target');
    const pagesApplied = inst.migration!.applied + (last?.pages.length ?? 0);
    if (!last) await this.migrationOp(inst, { op: 'finish', globals });
    else {
      const own = { pages: Uint32Array.from(last.pages), bytes: ownCopy(last.bytes), memoryBytes: last.memoryBytes };
      await this.migrationOp(inst, { op: 'finish', globals, last: own }, [own.pages.buffer, own.bytes.buffer]);
    }
    inst.migration = undefined;
    return { pagesApplied };
  }

  /**
   * Round 0 is all here: clears the key's snapshot pages it did not cover
   * (the source's zero pages). finishReceive does it too if it was not done.
   */
  async settleReceive(instanceId: string): Promise<void> {
    await this.migrationOp(this.migrating(instanceId, 'target'), { op: 'settle' });
  }

  /** Just before the stop (either side): a full garbage collection in the instance's thread and in this one, out of the pause. */
  async quiesceMigration(instanceId: string): Promise<void> {
    const inst = this.liveInstance(instanceId);
    if (!inst.migration) throw new FlurryError('bad_request', `instance ${instanceId} is not migrating`);
    collectGarbage();
    await this.migrationOp(inst, { op: 'quiesce' });
  }

  /** SHA-256 of an instance's linear memory, read in its thread between requests (to check a migration). */
  async instanceMemoryHash(instanceId: string): Promise<{ hash: string; memoryBytes: number }> {
    const result = await this.migrationOp(this.liveInstance(instanceId), { op: 'hash' });
    if (result.op !== 'hash') throw new FlurryError('internal', `unexpected migration answer ${result.op}`);
    return { hash: result.hash, memoryBytes: result.memoryBytes };
  }

  private liveInstance(instanceId: string): PoolInstance {
    if (this.closing) throw new FlurryError('unavailable', 'the guest pool is closing');
    const inst = this.liveInstances.get(instanceId);
    if (!inst) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
    return inst;
  }

  private migrating(instanceId: string, role: 'source' | 'target'): PoolInstance {
    const inst = this.liveInstance(instanceId);
    if (inst.migration?.role !== role) throw new FlurryError('bad_request', `instance ${instanceId} is not ${role === 'source' ? 'migrating away' : 'being received'}`);
    return inst;
  }

  /** `urgent`: ahead of the thread's other queued jobs (the stop-and-copy, while requests wait), told when it goes to the thread. */
  private async migrationOp(inst: PoolInstance, op: MigrationOp, transfer: ArrayBuffer[] = [], urgent?: () => void): Promise<MigrationOpResult> {
    const answer = await this.submitTo(inst.thread, {
      message: { type: 'instance-migrate', id: this.nextId++, instanceId: inst.instanceId, op },
      transfer,
      // Reading or writing a whole large memory (round 0) may take far longer than a request; a step that
      // times out terminates the thread with its instances, so it gets the init limit.
      timeoutMs: Math.max(this.limits.callTimeoutMs, this.limits.initTimeoutMs),
      what: 'migration step',
      key: inst.key,
      instanceId: inst.instanceId,
      onDispatch: urgent,
    }, urgent !== undefined);
    if (answer.type !== 'migrated') throw new FlurryError('internal', `unexpected answer ${answer.type} to a migration step`);
    return answer.result;
  }

  /** The persistent instances alive in this pool. */
  instances(): InstanceInfo[] {
    return [...this.liveInstances.values()].map(({ instanceId, key, createdAt, requests, migration }) => ({
      instanceId,
      key,
      createdAt,
      requests,
      ...(migration ? { migrating: migration.role === 'target' ? ('target' as const) : migration.stopped ? ('stopped' as const) : ('source' as const) } : {}),
    }));
  }

  /** Tells `listener` of every persistent instance destroyed with its thread (not those destroyed on request). */
  onInstanceGone(listener: (instanceId: string, reason: string) => void): void {
    this.instanceGoneListeners.push(listener);
  }

  /** Forgets the instances of a thread that is gone, failing their queued requests with an error naming each. */
  private instancesGone(thread: GuestThread, reason: string): void {
    if (!isInstanceThread(thread)) return;
    const { holding } = thread;
    for (const id of holding.instances) {
      for (const h of this.liveInstances.get(id)?.migration?.held.splice(0) ?? []) h.forward(Promise.reject(new FlurryError('unavailable', `instance ${id} was destroyed: ${reason}`)));
      this.liveInstances.delete(id);
      this.budget?.untrack(GuestPool.instanceHolding(id));
      this.log.warn({ instanceId: id, reason }, 'a persistent guest instance was destroyed with its thread');
      for (const l of this.instanceGoneListeners) l(id, reason);
    }
    for (const job of holding.pinned.drain()) {
      job.reject(new FlurryError('unavailable', `instance ${job.instanceId ?? '?'} was destroyed: ${reason}`));
    }
    holding.instances.clear();
  }

  /** Submits a job that only `thread` may run (one of its instances'). */
  private submitTo(thread: InstanceThread, job: Omit<Job, 'resolve' | 'reject'>, first = false): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const full: Job = { ...job, resolve, reject };
      if (this.closing) return reject(new FlurryError('unavailable', 'the guest pool is closing'));
      if (thread.retired) return reject(new FlurryError('unavailable', `instance ${job.instanceId ?? '?'} was destroyed with its thread`));
      if (thread.online && !thread.job) return this.dispatch(thread, full);
      if (first) thread.holding.pinned.unshift(full);
      else thread.holding.pinned.push(full);
    });
  }

  /**
   * Drops a key's snapshot (warm or adopted) from every thread. Calls already
   * running finish; later ones fail with not_found. Resolves once no thread
   * holds anything of it: its memfd is closed, and no clone is registered with
   * its page store any more (the host may drop the store then).
   */
  evict(key: string): Promise<void> {
    // Its persistent instances go first (a lazy one is registered with the snapshot's page store).
    for (const inst of [...this.liveInstances.values()]) if (inst.key === key) this.destroyInstance(inst.instanceId);
    const pending = this.pending.get(key);
    if (pending) {
      pending.evicted = true;
      this.pending.delete(key);
    }
    this.keyTenants.delete(key);
    // Counted as freed from here: the threads drop it next, and nothing new may use it.
    this.budget?.untrack(GuestPool.snapshotHolding(key));
    const released = this.snapshots.release(key);
    if (!released) return Promise.resolve();
    const { held, done } = released;
    for (const thread of held.holders) thread.worker.postMessage({ type: 'evict', key, snapshotId: held.id } satisfies ToThread);
    return done;
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
    const chosen = (j: Job) => j.key === key && (callIds === undefined || (j.callId !== undefined && callIds.has(j.callId)));
    for (const job of this.queue.extract(chosen)) job.reject(reason);
    for (const thread of [...this.threads]) {
      if (!thread.job || !chosen(thread.job)) continue;
      const job = this.finishJob(thread)!;
      this.log.warn({ callId: job.callId, key, reason: reason.message }, `guest ${job.what} aborted; replacing its thread`);
      this.retire(thread, `its thread was terminated: ${reason.message}`);
      job.reject(reason);
    }
  }

  /** Drops an adopted or warm snapshot: the same as evict. */
  releaseSnapshot(key: string): Promise<void> {
    return this.evict(key);
  }

  /** Frees a snapshot nobody holds any more. */
  private free(held: Held): void {
    this.freeMemory(held.snapshot.memory);
    this.modules.release(held.variants);
  }

  private freeMemory(memory: SnapshotMemory): void {
    // Copies are garbage-collected; a lazy snapshot's page store is the host's.
    if (memory.kind === 'cow') this.native?.closeFd(memory.fd);
  }

  /**
   * Refuses new calls and fails queued ones with `unavailable`, waits for
   * calls in flight (at most `graceMs`), then terminates every thread.
   */
  close(graceMs = this.limits.callTimeoutMs): Promise<void> {
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.stalls.stop();
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    for (const job of this.queue.drain()) job.reject(new FlurryError('unavailable', 'the guest pool is closing'));
    for (const thread of this.instanceThreads()) for (const job of thread.holding.pinned.drain()) job.reject(new FlurryError('unavailable', 'the guest pool is closing'));
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.allIdle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    const exits: Promise<number>[] = [];
    for (const thread of this.threads) {
      thread.retired = true;
      const job = this.finishJob(thread);
      job?.reject(new FlurryError('unavailable', `the guest pool closed before this ${job.what} finished`));
      exits.push(this.terminate(thread));
    }
    this.threads.clear();
    this.idle.length = 0;
    this.liveInstances.clear();
    await Promise.all(exits);
    await this.snapshots.releaseAll();
  }

  /** Ends a thread, answering any fault of lazy memory it sleeps in (it would never exit otherwise). */
  private terminate(thread: GuestThread): Promise<number> {
    return terminateGuestThread(thread.worker, thread.slot, this.native);
  }

  private submit(job: Omit<Job, 'resolve' | 'reject'>): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const full: Job = { ...job, resolve, reject };
      if (this.closing) return reject(new FlurryError('unavailable', 'the guest pool is closing'));
      // The most recently used thread (its caches are the warmest).
      const thread = this.idle.pop();
      if (thread) return this.dispatch(thread, full);
      if (this.queue.length >= MAX_QUEUED_CALLS) return reject(new FlurryError('no_capacity', `all ${this.size} guest threads are busy and ${MAX_QUEUED_CALLS} calls are waiting`));
      this.queue.push(full);
    });
  }

  private dispatch(thread: GuestThread, job: Job): void {
    thread.job = job;
    job.onDispatch?.();
    this.inFlight++;
    job.dispatchedAt = performance.now();
    thread.timer = setTimeout(() => this.timedOut(thread), job.timeoutMs);
    thread.worker.postMessage(job.message, job.transfer);
  }

  /** Detaches the thread's job (if any) and stops its timer. */
  private finishJob(thread: GuestThread): Job | undefined {
    const job = thread.job;
    if (!job) return undefined;
    clearTimeout(thread.timer);
    thread.job = undefined;
    thread.timer = undefined;
    this.inFlight--;
    if (this.inFlight === 0) this.allIdle?.();
    return job;
  }

  /** Gives a free thread its next job: an instance thread its instances' next (or stops it once it holds none), a call thread the next queued call. */
  private release(thread: GuestThread): void {
    if (this.closing || thread.retired) return;
    if (isInstanceThread(thread)) {
      const next = thread.holding.pinned.shift();
      if (next) this.dispatch(thread, next);
      else this.stopIfEmpty(thread);
      return;
    }
    const next = this.queue.shift();
    if (next) this.dispatch(thread, next);
    else this.idle.push(thread);
  }

  /** Stops a tenant's instance thread that holds no instance, is making none and has nothing to run. */
  private stopIfEmpty(thread: InstanceThread): void {
    const { holding } = thread;
    if (holding.tenant === undefined || thread.retired || thread.job || holding.instances.size > 0 || holding.claims > 0 || holding.pinned.length > 0) return;
    this.stop(thread);
    this.keepSpareInstanceThread();
  }

  private timedOut(thread: GuestThread): void {
    const current = thread.job;
    if (!current) return;
    // A process stopped meanwhile (SIGSTOP) stopped its guest too: only the time the guest could run counts.
    const ran = this.stalls.ranSince(current.dispatchedAt ?? 0);
    if (ran < current.timeoutMs) {
      thread.timer = setTimeout(() => this.timedOut(thread), current.timeoutMs - ran);
      return;
    }
    const job = this.finishJob(thread);
    if (!job) return;
    // The job's own limit: a clone may carry one of its own (a job's timeoutMs), a migration step a longer one.
    const limit = job.timeoutMs;
    this.log.warn({ callId: job.callId, key: job.key, instanceId: job.instanceId, limitMs: limit }, `guest ${job.what} timed out; ending its thread`);
    this.retire(thread, `a ${job.what}${job.instanceId ? ` of instance ${job.instanceId}` : ''} on its thread exceeded ${limit} ms`);
    if (job.instanceId) job.reject(new FlurryError('timeout', `instance ${job.instanceId}: ${job.what} exceeded ${limit} ms; the instance was destroyed with its thread`));
    else job.reject(new FlurryError('timeout', `${job.what} exceeded ${limit} ms`));
  }

  /** Terminates a thread on purpose with its instances; a call thread gets a replacement (instance threads start when needed). */
  private retire(thread: GuestThread, reason = 'its thread was terminated'): void {
    this.stop(thread);
    this.instancesGone(thread, reason);
    if (isInstanceThread(thread)) this.keepSpareInstanceThread();
    else this.replace();
  }

  /** Terminates a thread on purpose; its snapshots are freed once it has exited. */
  private stop(thread: GuestThread): void {
    thread.retired = true;
    this.threads.delete(thread);
    this.terminate(thread)
      // Until it has exited, the thread may still map a snapshot's memfd (making a spare, say).
      .then(() => this.snapshots.holderGone(thread))
      .catch((err: unknown) => this.log.error({ err }, 'terminating a guest thread failed'));
  }

  private replace(delayMs = 0): void {
    if (this.closing) return;
    const start = () => this.spawn().started.catch((err: unknown) => this.log.error({ err }, 'a replacement guest thread failed to start'));
    if (delayMs === 0) return void start();
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      void start();
    }, delayMs);
    this.respawnTimers.add(timer);
  }

  /**
   * Starts a thread: a call thread (loaded with every warm key) or, given
   * `holding`, an instance thread (sent the keys of its instances as they are
   * placed). `started` settles once it runs.
   */
  private spawn(holding?: Holding): GuestThread {
    const slot = new RegistrationSlot();
    const workerData: GuestThreadData = { limits: this.limits, pager: this.pager, registrationSlot: slot.buffer };
    const thread: GuestThread = { worker: new Worker(this.script, { workerData }), slot, online: false, retired: false, started: Promise.resolve(), holding };
    this.threads.add(thread);
    if (!holding) for (const held of this.snapshots.all()) this.load(thread, held);
    thread.worker.on('message', (msg: FromThread) => this.onMessage(thread, msg));
    thread.worker.on('error', (err) => (thread.lastError = err));
    thread.worker.on('exit', (code) => this.onExit(thread, code));
    thread.started = new Promise((resolve, reject) => {
      thread.worker.once('online', () => {
        thread.online = true;
        this.release(thread);
        resolve();
      });
      thread.worker.once('exit', () => reject(thread.lastError ?? new Error('the guest thread exited before it started')));
    });
    return thread;
  }

  private onMessage(thread: GuestThread, msg: FromThread): void {
    if (msg.type === 'dropped') return this.snapshots.dropped(thread, msg.snapshotId);
    const job = thread.job;
    if (!job || job.message.id !== msg.id) {
      // A snapshot whose warm timed out meanwhile: nobody will hold it.
      if (msg.type === 'warmed') this.freeMemory(msg.snapshot.memory);
      return;
    }
    if (msg.type === 'progress') return job.onProgress?.(msg.done, msg.total);
    if (msg.type === 'started') return job.onStarted?.();
    this.finishJob(thread);
    if (msg.type === 'failed') job.reject(new GuestCallError(msg.error.code, msg.error.message, msg.logs, msg.droppedLogLines));
    else job.resolve(msg);
    this.release(thread);
  }

  private onExit(thread: GuestThread, code: number): void {
    if (thread.retired) return;
    thread.retired = true;
    this.threads.delete(thread);
    this.snapshots.holderGone(thread);
    const idleAt = this.idle.indexOf(thread);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    const reason = thread.lastError?.message ?? `exit code ${code}`;
    this.log.error({ reason, callId: thread.job?.callId, key: thread.job?.key, instanceThread: isInstanceThread(thread) }, 'a guest thread died');
    const job = this.finishJob(thread);
    this.instancesGone(thread, `its thread died: ${reason}`);
    job?.reject(new FlurryError('internal', `the guest thread running this ${job.what}${job.instanceId ? ` of instance ${job.instanceId}` : ''} died: ${reason}`));
    if (thread === this.spareInstanceThread) this.spareInstanceThread = undefined;
    if (isInstanceThread(thread)) this.keepSpareInstanceThread(thread.online ? 0 : RESPAWN_DELAY_MS);
    else this.replace(thread.online ? 0 : RESPAWN_DELAY_MS);
  }
}
