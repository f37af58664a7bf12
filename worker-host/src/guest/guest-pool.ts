/**
 * The pool of guest threads that the host's main process runs every guest
 * call through: warms parents and snapshots them, queues calls (FIFO) for
 * free threads, enforces the time limits from this thread (a guest in an
 * endless loop cannot answer messages), and replaces threads that time out
 * or crash.
 */
import { Worker } from 'node:worker_threads';
import { FlurryError, rewriteForSnapshot, type ErrorCode, type Logger } from '@flurry/core';
import { FifoQueue } from './fifo-queue.js';
import type { EntryPoint, Snapshot } from './instance.js';
import type { FromThread, GuestThreadData, ToThread } from './thread-messages.js';
import { guestThreadScript } from './worker-script.js';

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

type Answer = Extract<FromThread, { type: 'warmed' | 'result' }>;

interface Job {
  message: Extract<ToThread, { type: 'warm' | 'call' }>;
  transfer: ArrayBuffer[];
  timeoutMs: number;
  /** For messages: "call" or "init". */
  what: string;
  key: string;
  callId?: string;
  onProgress?: (done: number, total: number) => void;
  resolve(answer: Answer): void;
  reject(err: FlurryError): void;
}

interface GuestThread {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
  online: boolean;
  /** Terminated on purpose (timeout, close): its exit is expected. */
  retired: boolean;
  lastError?: Error;
}

/** What every thread needs to make clones of a warm key, kept to load threads started later. */
interface WarmGuest {
  clone: WebAssembly.Module;
  snapshot: Snapshot;
  info: WarmInfo;
}

interface Warming {
  promise: Promise<WarmInfo>;
  evicted: boolean;
}

/** A copy with a buffer of its own, which can be transferred to a thread without detaching the caller's bytes. */
function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

async function compile(bytes: Uint8Array): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (err) {
    throw new FlurryError('invalid_module', `not a valid WebAssembly module: ${(err as Error).message}`);
  }
}

export class GuestPool {
  private readonly threads = new Set<GuestThread>();
  /** Free threads, most recently used last (its caches are the warmest). */
  private readonly idle: GuestThread[] = [];
  private readonly queue = new FifoQueue<Job>();
  private readonly warmed = new Map<string, WarmGuest>();
  private readonly warming = new Map<string, Warming>();
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  private readonly script = guestThreadScript();
  private nextId = 1;
  private inFlight = 0;
  private closing: Promise<void> | undefined;
  private allIdle: (() => void) | undefined;

  private constructor(
    private readonly limits: GuestLimits,
    private readonly log: Logger,
  ) {}

  /** Starts all threads ahead of the calls; resolves once every one is running. */
  static async start(opts: { threads: number; limits: GuestLimits; log: Logger }): Promise<GuestPool> {
    if (!Number.isInteger(opts.threads) || opts.threads < 1) throw new RangeError(`a guest pool needs at least one thread, got ${opts.threads}`);
    const pool = new GuestPool(opts.limits, opts.log);
    try {
      await Promise.all(Array.from({ length: opts.threads }, () => pool.spawn()));
    } catch (err) {
      await pool.close(0);
      throw err;
    }
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

  /** Threads, counting replacements that are still starting. */
  get size(): number {
    return this.threads.size;
  }

  has(key: string): boolean {
    return this.warmed.has(key);
  }

  warmKeys(): string[] {
    return [...this.warmed.keys()];
  }

  /**
   * Compiles both variants of the module once, runs the parent's init in one
   * thread, snapshots it and gives the snapshot to every thread. Concurrent
   * warms of one key share one promise; warming a key that is already warm
   * answers its WarmInfo (evict first to warm it again).
   */
  warm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array = new Uint8Array(0), callId?: string): Promise<WarmInfo> {
    const done = this.warmed.get(key);
    if (done) return Promise.resolve(done.info);
    const pending = this.warming.get(key);
    if (pending) return pending.promise;
    const warming: Warming = { promise: undefined as unknown as Promise<WarmInfo>, evicted: false };
    warming.promise = this.doWarm(key, moduleBytes, initInput, callId, warming).finally(() => {
      if (this.warming.get(key) === warming) this.warming.delete(key);
    });
    this.warming.set(key, warming);
    return warming.promise;
  }

  private async doWarm(key: string, moduleBytes: Uint8Array, initInput: Uint8Array, callId: string | undefined, warming: Warming): Promise<WarmInfo> {
    let variants: ReturnType<typeof rewriteForSnapshot>;
    try {
      variants = rewriteForSnapshot(moduleBytes);
    } catch (err) {
      throw new FlurryError('invalid_module', (err as Error).message);
    }
    const [parent, clone] = await Promise.all([compile(variants.parent), compile(variants.clone)]);
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
    if (warming.evicted) throw new FlurryError('not_found', `${key} was evicted while it was warming`);
    const { snapshot } = answer;
    const info: WarmInfo = { initMs: answer.initMs, memoryBytes: snapshot.memory.byteLength, globals: snapshot.globals.length, logs: answer.logs, droppedLogLines: answer.droppedLogLines };
    this.warmed.set(key, { clone, snapshot, info });
    for (const thread of this.threads) thread.worker.postMessage({ type: 'load', key, clone, snapshot } satisfies ToThread);
    return info;
  }

  handle(key: string, request: HttpRequestData, callId: string): Promise<CallResult> {
    const { body, method, path, query, headers } = request;
    return this.call(key, 'handle', [], body, callId, { method, path, query, headers });
  }

  run(key: string, index: number, count: number, input: Uint8Array, callId: string, onProgress?: (done: number, total: number) => void): Promise<CallResult> {
    return this.call(key, 'run', [index, count], input, callId, undefined, onProgress);
  }

  /** `input` is the clones' outputs framed as in docs/guest-abi.md (see frameReduceInput). */
  reduce(key: string, count: number, input: Uint8Array, callId: string): Promise<CallResult> {
    return this.call(key, 'reduce', [count], input, callId);
  }

  private async call(
    key: string,
    entry: EntryPoint,
    args: number[],
    input: Uint8Array,
    callId: string,
    request?: Extract<ToThread, { type: 'call' }>['request'],
    onProgress?: (done: number, total: number) => void,
  ): Promise<CallResult> {
    if (!this.warmed.has(key)) throw new FlurryError('not_found', `${key} is not warm on this host`);
    const own = ownCopy(input);
    const answer = await this.submit({
      message: { type: 'call', id: this.nextId++, key, entry, args, input: own, request },
      transfer: [own.buffer],
      timeoutMs: this.limits.callTimeoutMs,
      what: 'call',
      key,
      callId,
      onProgress,
    });
    if (answer.type !== 'result') throw new FlurryError('internal', `unexpected answer ${answer.type} to a call`);
    const { status, headers, body, logs, droppedLogLines, durationMs, progress } = answer;
    // The thread throttles progress messages; the last report always reaches the callback.
    if (progress) onProgress?.(progress.done, progress.total);
    return { status, headers, body, logs, droppedLogLines, durationMs, progress };
  }

  /** Drops a warm key from every thread. Calls already running finish; later ones fail with not_found. */
  evict(key: string): void {
    const warming = this.warming.get(key);
    if (warming) {
      warming.evicted = true;
      this.warming.delete(key);
    }
    if (!this.warmed.delete(key)) return;
    for (const thread of this.threads) thread.worker.postMessage({ type: 'evict', key } satisfies ToThread);
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
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    for (const job of this.queue.drain()) job.reject(new FlurryError('unavailable', 'the guest pool is closing'));
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
      exits.push(thread.worker.terminate());
    }
    this.threads.clear();
    this.idle.length = 0;
    await Promise.all(exits);
  }

  private submit(job: Omit<Job, 'resolve' | 'reject'>): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const full: Job = { ...job, resolve, reject };
      if (this.closing) return reject(new FlurryError('unavailable', 'the guest pool is closing'));
      const thread = this.idle.pop();
      if (thread) return this.dispatch(thread, full);
      if (this.queue.length >= MAX_QUEUED_CALLS) return reject(new FlurryError('no_capacity', `all ${this.threads.size} guest threads are busy and ${MAX_QUEUED_CALLS} calls are waiting`));
      this.queue.push(full);
    });
  }

  private dispatch(thread: GuestThread, job: Job): void {
    thread.job = job;
    this.inFlight++;
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

  /** Gives a free thread the next queued job, or parks it. */
  private release(thread: GuestThread): void {
    if (this.closing || thread.retired) return;
    const next = this.queue.shift();
    if (next) this.dispatch(thread, next);
    else this.idle.push(thread);
  }

  private timedOut(thread: GuestThread): void {
    const job = this.finishJob(thread);
    if (!job) return;
    const limit = job.what === 'init' ? this.limits.initTimeoutMs : this.limits.callTimeoutMs;
    this.log.warn({ callId: job.callId, key: job.key, limitMs: limit }, `guest ${job.what} timed out; replacing its thread`);
    this.retire(thread);
    job.reject(new FlurryError('timeout', `${job.what} exceeded ${limit} ms`));
  }

  /** Terminates a thread on purpose and starts another in its place. */
  private retire(thread: GuestThread): void {
    thread.retired = true;
    this.threads.delete(thread);
    thread.worker.terminate().catch((err: unknown) => this.log.error({ err }, 'terminating a guest thread failed'));
    this.replace();
  }

  private replace(delayMs = 0): void {
    if (this.closing) return;
    const start = () => this.spawn().catch((err: unknown) => this.log.error({ err }, 'a replacement guest thread failed to start'));
    if (delayMs === 0) return void start();
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer);
      void start();
    }, delayMs);
    this.respawnTimers.add(timer);
  }

  /** Starts a thread, loads every warm key into it, and resolves once it runs. */
  private spawn(): Promise<void> {
    const workerData: GuestThreadData = { limits: this.limits };
    const thread: GuestThread = { worker: new Worker(this.script, { workerData }), online: false, retired: false };
    this.threads.add(thread);
    for (const [key, { clone, snapshot }] of this.warmed) thread.worker.postMessage({ type: 'load', key, clone, snapshot } satisfies ToThread);
    thread.worker.on('message', (msg: FromThread) => this.onMessage(thread, msg));
    thread.worker.on('error', (err) => (thread.lastError = err));
    thread.worker.on('exit', (code) => this.onExit(thread, code));
    return new Promise((resolve, reject) => {
      thread.worker.once('online', () => {
        thread.online = true;
        this.release(thread);
        resolve();
      });
      thread.worker.once('exit', () => reject(thread.lastError ?? new Error('the guest thread exited before it started')));
    });
  }

  private onMessage(thread: GuestThread, msg: FromThread): void {
    const job = thread.job;
    if (!job || job.message.id !== msg.id) return;
    if (msg.type === 'progress') return job.onProgress?.(msg.done, msg.total);
    this.finishJob(thread);
    if (msg.type === 'failed') job.reject(new GuestCallError(msg.error.code, msg.error.message, msg.logs, msg.droppedLogLines));
    else job.resolve(msg);
    this.release(thread);
  }

  private onExit(thread: GuestThread, code: number): void {
    if (thread.retired) return;
    this.threads.delete(thread);
    const idleAt = this.idle.indexOf(thread);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    const reason = thread.lastError?.message ?? `exit code ${code}`;
    this.log.error({ reason, callId: thread.job?.callId, key: thread.job?.key }, 'a guest thread died; replacing it');
    const job = this.finishJob(thread);
    job?.reject(new FlurryError('internal', `the guest thread running this ${job.what} died: ${reason}`));
    this.replace(thread.online ? 0 : RESPAWN_DELAY_MS);
  }
}
