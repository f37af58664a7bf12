/**
 * Entry point of a guest thread (worker_threads): warms parents and runs each
 * call in a fresh instance made from a snapshot, one at a time. Traps and
 * guest errors are answered as `failed`; they never end the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { InvokeReply, InvokeRequest, WireError } from '@flurry/core';
import { PAGE_SIZE, WASM_PAGE_SIZE } from '@flurry/core/basics';
import { loadNativePager } from '../native/pager.js';
import { CallContext, type RequestHead } from './call-context.js';
import { CurrentCall } from './current-call.js';
import { guestWireError } from './guest-failure.js';
import { outcome } from './call-outcome.js';
import { buildImportObject, hostFunctions } from './import-object.js';
import { CloneFactory, makeWarmParent, runEntry, runOnRestore, runPersistentEntry, takeSnapshot, type Clone, type EntryPoint } from './instance.js';
import { applyPages, DirtyTracker, growAtLeast, hashMemory, readGlobals, writeGlobals, zeroUnreceived, type MigrationOpResult } from './migration-ops.js';
import { MemoryPool } from './memory-pool.js';
import { RegistrationSlot } from './registration-slot.js';
import { TaskLoops } from './task-loop.js';
import type { MemoryStats } from './snapshot-memory.js';
import type { FromThread, GuestThreadData, ToThread } from './thread-messages.js';
import { serveMailbox } from './thread-mailbox.js';
import { cells, type Cells } from './thread-call-cells.js';
import { ThreadChannel } from './thread-channel.js';
import { AheadWork } from './ahead-work.js';
import { collectGarbage } from '../collect-garbage.js';

/** Progress reports of a `run` reach the main thread at most this often; the last one comes with the result. */
const PROGRESS_INTERVAL_MS = 50;

const port = parentPort!;
const data = workerData as GuestThreadData;
const { limits } = data;
const pager = data.pager === 'native' ? loadNativePager() : undefined;
const registrationSlot = new RegistrationSlot(data.registrationSlot);
const current = new CurrentCall();
const memoryPool = new MemoryPool(pager, limits.pooledMemories);
const host = hostFunctions(current);
/** By key: the snapshot's id and its factory (the compiled clone module, its import object and the memory restorer). */
const clones = new Map<string, { snapshotId: number; factory: CloneFactory; stackPointer?: string; cells?: { id: number; cells: Cells } }>();
/** What the thread makes ahead between messages: only the key served or loaded last keeps a spare, so spares cost one instance per thread. */
const ahead = new AheadWork(memoryPool);
/**
 * Persistent (service) instances pinned to this thread, by instance id: clones
 * that stay alive between requests (see PersistentInstances). Between requests
 * nothing runs in one, so migration-ops.ts reads its memory and globals for a
 * migration, or writes them into one being received (made from the key's
 * snapshot, without on_restore: the guest moved, it did not restart).
 */
interface LiveInstance {
  key: string;
  clone: Clone;
  mode: MemoryStats['mode'];
  stack?: { global: WebAssembly.Global; rest: number };
  /** Dirty tracking while it migrates away. */
  tracker?: DirtyTracker;
  /** Being received, until round 0 is in: the pages received so far (one byte each); the others still hold the key's snapshot. */
  received?: Uint8Array;
}
const instances = new Map<string, LiveInstance>();

const taskLoops = new TaskLoops();

const mailbox = serveMailbox(data.mailbox, (msg, postedAt) => {
  if (!taskLoops.intercept(msg)) handle(msg, postedAt);
}, { idle: ahead, ...(data.channel && { inLoop: { readable: () => channel?.readable() ?? false } }) });

/** This thread's own connections, on a host whose call threads read their own calls. */
let channel: ThreadChannel | undefined;

/**
 * Work from the host that makes this thread's connections say `busy` until it is answered: an init, a job's clone
 * or reduce — work of seconds, during which calls sent here would wait. A function call from the queue group
 * (`handle`) does not: it is as short as the calls of the connections, which wait for it as they wait for each
 * other, and two frames to every connection per such call cost the gateways a wake-up each.
 */
const busyWith = (msg: ToThread): boolean => msg.type === 'warm' || (msg.type === 'call' && msg.entry !== 'handle');
const JOB_ENDS = new Set<FromThread['type']>(['warmed', 'result', 'failed']);

/** `postedAt`: when the pool posted the latest message (its clock), reported with a call's timings. */
function handle(msg: ToThread, postedAt?: number): void {
  if (channel && busyWith(msg)) channel.setBusy(true);
  switch (msg.type) {
    case 'warm':
      return warm(msg);
    case 'load':
      return load(msg);
    case 'call':
      return call(msg, postedAt);
    case 'instance-create':
      return createInstance(msg);
    case 'instance-call':
      return instanceCall(msg);
    case 'instance-migrate':
      return migrate(msg);
    case 'instance-destroy':
      return destroyInstance(msg.instanceId);
    case 'evict':
      // Always answered: the pool frees the snapshot once every thread it sent it to has.
      if (clones.get(msg.key)?.snapshotId === msg.snapshotId) return forget(msg.key);
      return post({ type: 'dropped', snapshotId: msg.snapshotId });
  }
}
// Jobs come only after this: the time spent loading this script is not counted against the first job's limit.
if (!data.channel) port.postMessage({ type: 'ready' } satisfies FromThread);
else {
  const own = data.channel;
  void ThreadChannel.listen(own, {
    key: (key) => clones.get(key)?.cells,
    arrived: () => mailbox.worked(),
    anyReadable: pager && ((fds) => pager.anyReadable(fds)),
    run: channelCall,
    after: (key) => {
      recycleAfter?.();
      recycleAfter = undefined;
      const factory = clones.get(key)?.factory;
      if (factory) prepareSpare(factory);
      mailbox.kick();
    },
    wakeWatchdog: () => post({ type: 'channel-deadline' }),
  }).then(({ channel: listening, port: listenPort }) => {
    channel = listening;
    port.postMessage({ type: 'ready', port: listenPort } satisfies FromThread);
  });
}

function load(msg: Extract<ToThread, { type: 'load' }>): void {
  forget(msg.key);
  // Cannot fail: the pool checked the clone variant's imports, and sends cow and lazy snapshots only to threads
  // that loaded the native pager.
  const factory = new CloneFactory(msg.clone, buildImportObject(msg.clone, host), msg.snapshot, pager, { pool: memoryPool, maximumPages: msg.maximumPages, module: msg.moduleDigest, instancesReusable: msg.instancesReusable === true });
  clones.set(msg.key, { snapshotId: msg.snapshotId, factory, stackPointer: msg.stackPointer, ...(msg.cells && { cells: { id: msg.cells.id, cells: cells(msg.cells.buffer) } }) });
  // A new snapshot is about to be forked: its first clone's instance is made ahead while no message waits.
  prepareSpare(factory);
}

/** Drops a key's factory and its spare, so that its snapshot's memfd or page store can be freed. */
function forget(key: string): void {
  const held = clones.get(key);
  if (!held) return;
  clones.delete(key);
  ahead.forget(held.factory);
  try {
    held.factory.close();
  } catch {
    // A spare whose registration is already gone: nothing is left to free.
  }
  post({ type: 'dropped', snapshotId: held.snapshotId });
}

function post(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
  if (channel && JOB_ENDS.has(msg.type)) channel.setBusy(false);
}

function warm(msg: Extract<ToThread, { type: 'warm' }>): void {
  const context = new CallContext(msg.initInput, undefined, limits);
  current.begin(context);
  const started = performance.now();
  let parent: WebAssembly.Instance | undefined;
  let thrown: { error: unknown } | undefined;
  try {
    parent = makeWarmParent(msg.parent, buildImportObject(msg.parent, host), current.memory);
  } catch (error) {
    thrown = { error };
  }
  const initMs = performance.now() - started;
  context.finish();
  current.end();
  const logs = { logs: context.logs.lines, droppedLogLines: context.logs.dropped };
  const error = outcome(context, thrown, 0);
  if (error || !parent) return post({ type: 'failed', id: msg.id, error: error ?? { code: 'guest_error', message: 'the start function exited before init could run' }, ...logs });
  try {
    post({ type: 'warmed', id: msg.id, snapshot: takeSnapshot(parent, pager), initMs, ...logs });
  } catch (err) {
    post({ type: 'failed', id: msg.id, error: guestWireError(err), ...logs });
  }
}

function call(msg: Extract<ToThread, { type: 'call' }>, postedAt?: number): void {
  const receivedAt = performance.timeOrigin + performance.now();
  const factory = clones.get(msg.key)?.factory;
  if (!factory) return post({ type: 'failed', id: msg.id, error: { code: 'not_found', message: `${msg.key} is not warm on this thread` }, logs: [], droppedLogLines: 0 });
  const callLimits = msg.maxOutputBytes === undefined ? limits : { ...limits, maxOutputBytes: msg.maxOutputBytes };
  if (msg.entry === 'run_task') return taskLoops.run(msg, { factory, current, registrationSlot, limits: callLimits, post }, () => prepareSpare(factory), handle);
  const ran = runClone(factory, msg.entry, msg.args, msg.input, msg.request, callLimits, msg.entry === 'run' ? progressPoster(msg.id) : undefined, (startMs) => {
    if (msg.notifyStart) post({ type: 'started', id: msg.id, startMs });
  }, postedAt, receivedAt);
  const logs = { logs: ran.context.logs.lines, droppedLogLines: ran.context.logs.dropped };
  if (ran.error || !ran.memory) post({ type: 'failed', id: msg.id, error: ran.error ?? { code: 'internal', message: 'the clone was not made' }, ...logs });
  else {
    const body = ran.context.output.take();
    post({ type: 'result', id: msg.id, status: ran.context.status, headers: ran.context.headers, body, durationMs: ran.durationMs, startMs: ran.startMs, memory: ran.memory, progress: ran.context.progress, ...logs }, [body.buffer as ArrayBuffer]);
  }
  ran.recycle();
  prepareSpare(factory);
}

/** One entry point in a fresh clone of `factory`'s snapshot; `recycle` gives the clone back to the factory once the answer is out. */
function runClone(
  factory: CloneFactory, entry: EntryPoint, args: number[], input: Uint8Array, request: RequestHead | undefined, callLimits: typeof limits,
  onProgress: ((done: number, total: number) => void) | undefined, onStart: (startMs: number) => void, postedAt?: number, receivedAt?: number,
): { context: CallContext; error?: WireError; memory?: MemoryStats; durationMs: number; startMs: number; recycle(): void } {
  const context = new CallContext(input, request, callLimits, onProgress);
  current.begin(context);
  const started = performance.now();
  let startMs = 0;
  let status = 0;
  let thrown: { error: unknown } | undefined;
  let clone: Clone | undefined;
  let createdAt: number | undefined;
  try {
    clone = factory.instantiate(current.memory);
    createdAt = performance.timeOrigin + performance.now();
    registrationSlot.set(clone.restored.registration);
    status = runEntry(clone.instance, entry, args, () => {
      startMs = performance.now() - started;
      onStart(startMs);
    });
  } catch (error) {
    thrown = { error };
  }
  const durationMs = performance.now() - started;
  context.finish();
  current.end();
  let memory: MemoryStats | undefined;
  try {
    if (clone) memory = { mode: factory.mode, restoreMs: clone.restoreMs, spare: clone.spare, pooled: clone.pooled, instanceAhead: clone.instanceAhead, postedAt, receivedAt, createdAt, ...(clone.spare ? {} : { instanceParts: clone.parts }), ...clone.restored.finish() };
  } catch (error) {
    thrown ??= { error };
  } finally {
    registrationSlot.set(undefined);
  }
  const error = outcome(context, thrown, status);
  const ran = clone && memory ? clone : undefined;
  return { context, error, memory, durationMs, startMs, recycle: () => ran && factory.recycle(ran, true) };
}

/** The clone of the last call read from a connection, given back once its answer is written. */
let recycleAfter: (() => void) | undefined;

/** A call read from this thread's own connection (thread-channel.ts): `handle` in a fresh clone, answered as the host would. */
function channelCall(key: string, req: InvokeRequest, maxOutputBytes: number | undefined, traceparent: string): InvokeReply {
  const hostId = data.channel!.hostId;
  const factory = clones.get(key)!.factory;
  const ran = runClone(factory, 'handle', [], req.body, { method: req.method, path: req.path, query: req.query, headers: req.headers }, maxOutputBytes === undefined ? limits : { ...limits, maxOutputBytes }, undefined, () => undefined);
  const { logs } = ran.context;
  // Only a call that logged wakes the main thread (it publishes the lines for their owner and logs them).
  if (logs.lines.length > 0 || logs.dropped > 0) post({ type: 'channel-logs', key, tenant: req.tenant, name: req.name, requestId: req.requestId, traceparent, logs: logs.lines, droppedLogLines: logs.dropped });
  recycleAfter = ran.recycle;
  if (ran.error || !ran.memory) return { ok: false, error: ran.error ?? { code: 'internal', message: 'the clone was not made' }, hostId };
  return { ok: true, status: ran.context.status, headers: ran.context.headers, body: ran.context.output.take(), hostId, durationMs: ran.durationMs };
}

/** The answer is on its way (or a snapshot just came): the next instance is made ahead while no message waits. */
function prepareSpare(factory: CloneFactory): void {
  ahead.served(factory);
}

function progressPoster(id: number): (done: number, total: number) => void {
  let lastPosted = -Infinity;
  return (done, total) => {
    const now = performance.now();
    if (now - lastPosted < PROGRESS_INTERVAL_MS) return;
    lastPosted = now;
    post({ type: 'progress', id, done, total });
  };
}

function createInstance(msg: Extract<ToThread, { type: 'instance-create' }>): void {
  const held = clones.get(msg.key);
  const factory = held?.factory;
  if (!factory) return post({ type: 'failed', id: msg.id, error: { code: 'not_found', message: `${msg.key} is not warm on this thread` }, logs: [], droppedLogLines: 0 });
  if (instances.has(msg.instanceId)) return post({ type: 'failed', id: msg.id, error: { code: 'internal', message: `instance ${msg.instanceId} exists already` }, logs: [], droppedLogLines: 0 });
  const context = new CallContext(new Uint8Array(0), undefined, limits);
  current.begin(context);
  const started = performance.now();
  let thrown: { error: unknown } | undefined;
  let clone: Clone | undefined;
  try {
    clone = factory.instantiate(current.memory);
    registrationSlot.set(clone.restored.registration);
    runOnRestore(clone.instance);
  } catch (error) {
    thrown = { error };
  }
  const startMs = performance.now() - started;
  context.finish();
  current.end();
  registrationSlot.set(undefined);
  const logs = { logs: context.logs.lines, droppedLogLines: context.logs.dropped };
  const error = outcome(context, thrown, 0);
  if (error || !clone) {
    try {
      clone?.restored.finish();
    } catch {
      // Its registration is gone already.
    }
    post({ type: 'failed', id: msg.id, error: error ?? { code: 'internal', message: 'the instance was not made' }, ...logs });
  } else {
    // At rest (no request running) the shadow stack is empty: its pointer's value now is its value between all requests.
    const global = held?.stackPointer ? clone.instance.exports[held.stackPointer] : undefined;
    const stack = global instanceof WebAssembly.Global && typeof global.value === 'number' ? { global, rest: global.value as number } : undefined;
    instances.set(msg.instanceId, { key: msg.key, clone, mode: factory.mode, stack });
    // Paging stats of a persistent instance come at its end (restored.finish()); these are its making.
    post({ type: 'created', id: msg.id, startMs, memory: { mode: factory.mode, restoreMs: clone.restoreMs, spare: clone.spare, pagesFromStore: 0, zeroPages: 0, pagesWaited: 0, faultWaitMs: 0 }, ...logs });
  }
  prepareSpare(factory);
}

function instanceCall(msg: Extract<ToThread, { type: 'instance-call' }>): void {
  const held = instances.get(msg.instanceId);
  if (!held) return post({ type: 'failed', id: msg.id, error: { code: 'not_found', message: `instance ${msg.instanceId} does not exist` }, logs: [], droppedLogLines: 0 });
  const { clone } = held;
  const context = new CallContext(msg.input, msg.request, msg.maxOutputBytes === undefined ? limits : { ...limits, maxOutputBytes: msg.maxOutputBytes });
  current.begin(context);
  current.memory.attach(clone.memory);
  const started = performance.now();
  let status = 0;
  let thrown: { error: unknown } | undefined;
  try {
    registrationSlot.set(clone.restored.registration);
    status = runPersistentEntry(clone.instance, 'handle', []);
  } catch (error) {
    // A trap unwinds the guest's stack but leaves its memory and globals as they were at the trap: the instance
    // stays usable. Only the shadow-stack pointer (a global: AssemblyScript's, clang's __stack_pointer) is
    // rewound to its value at rest, else every trap would leak the trapped frames for good.
    thrown = { error };
    if (held.stack) held.stack.global.value = held.stack.rest;
  } finally {
    registrationSlot.set(undefined);
  }
  const durationMs = performance.now() - started;
  context.finish();
  current.end();
  const logs = { logs: context.logs.lines, droppedLogLines: context.logs.dropped };
  const error = outcome(context, thrown, status);
  if (error) return post({ type: 'failed', id: msg.id, error, ...logs });
  const body = context.output.take();
  post({ type: 'result', id: msg.id, status: context.status, headers: context.headers, body, durationMs, startMs: 0, memory: { mode: held.mode, restoreMs: 0, spare: false, pagesFromStore: 0, zeroPages: 0, pagesWaited: 0, faultWaitMs: 0 }, memoryBytes: clone.memory.buffer.byteLength, ...logs }, [body.buffer as ArrayBuffer]);
}

function destroyInstance(instanceId: string): void {
  const held = instances.get(instanceId);
  if (!held) return;
  instances.delete(instanceId);
  try {
    held.tracker?.stop();
  } catch {
    // Its tracking is gone already.
  }
  try {
    held.clone.restored.finish();
  } catch {
    // A registration that is already gone: nothing is left to free.
  }
}

/** Largest memory a clone may grow to: what dirty tracking must cover. */
function maximumBytes(memory: WebAssembly.Memory): number {
  // V8 reserves the declared maximum (up to 4 GiB for wasm32); collectDirty scans only up to the current size.
  return Math.max(memory.buffer.byteLength, 4 * 1024 * 1024 * 1024 - WASM_PAGE_SIZE);
}

/** A live-migration step of a persistent instance (see migration-ops.ts); runs between its requests. */
function migrate(msg: Extract<ToThread, { type: 'instance-migrate' }>): void {
  const { op } = msg;
  const fail = (message: string, code: WireError['code'] = 'internal') => post({ type: 'failed', id: msg.id, error: { code, message }, logs: [], droppedLogLines: 0 });
  try {
    if (op.op === 'receive') {
      const held = clones.get(op.key);
      if (!held) return fail(`${op.key} is not warm on this thread`, 'not_found');
      if (instances.has(msg.instanceId)) return fail(`instance ${msg.instanceId} exists already`);
      // An instance of the key's module whose memory is then emptied: the received pages are its whole content.
      const clone = held.factory.instantiate(current.memory);
      if (clone.restored.registration !== undefined) {
        clone.restored.finish();
        return fail('receiving into lazily paged memory is not supported');
      }
      growAtLeast(clone.memory, op.memoryBytes);
      const global = held.stackPointer ? clone.instance.exports[held.stackPointer] : undefined;
      const stack = global instanceof WebAssembly.Global && typeof global.value === 'number' ? { global, rest: global.value as number } : undefined;
      instances.set(msg.instanceId, { key: op.key, clone, mode: held.factory.mode, stack, received: op.fromParent ? undefined : new Uint8Array(clone.memory.buffer.byteLength / PAGE_SIZE) });
      prepareSpare(held.factory);
      return answer({ op: 'done' });
    }
    const held = instances.get(msg.instanceId);
    if (!held) return fail(`instance ${msg.instanceId} does not exist`, 'not_found');
    const { clone } = held;
    switch (op.op) {
      case 'track': {
        if (held.tracker) return fail(`instance ${msg.instanceId} is migrating already`, 'bad_request');
        if (op.mode !== 'compare' && clone.restored.registration !== undefined) return fail('a lazily paged instance cannot be dirty-tracked natively (fill and unregister it first); use compare', 'bad_request');
        held.tracker = new DirtyTracker(clone.memory, op.mode, pager, maximumBytes(clone.memory), held.mode === 'cow');
        const armed = held.tracker.arm();
        return answer({ op: 'tracked', fromParent: held.tracker.canDiff, memoryBytes: clone.memory.buffer.byteLength, armed });
      }
      case 'arm': {
        if (!held.tracker) return fail(`instance ${msg.instanceId} is not migrating`, 'bad_request');
        const armed = held.tracker.arm();
        return answer({ op: 'tracked', fromParent: held.tracker.canDiff, memoryBytes: clone.memory.buffer.byteLength, armed });
      }
      case 'round':
      case 'final': {
        if (!held.tracker) return fail(`instance ${msg.instanceId} is not migrating`, 'bad_request');
        const started = performance.now();
        const round = held.tracker.round(op.op === 'round' ? op.maxPages : undefined, op.fromParent, op.reuse);
        if (op.op === 'round') return answer({ op: 'round', ...round }, [round.bytes.buffer as ArrayBuffer]);
        const globals = readGlobals(clone.instance);
        const readMs = performance.now() - started;
        // Tracking stays armed (nothing writes: the instance is stopped) until the instance is destroyed, once its held
        // requests are answered, or resumes ('untrack'): closing it takes a core for ms (7-40 for 256 MiB all written,
        // about 2.5 for a clone that wrote a tenth), which here would compete with the commit's round trip.
        return answer({ op: 'final', ...round, globals, readMs }, [round.bytes.buffer as ArrayBuffer]);
      }
      case 'untrack':
        held.tracker?.stop();
        held.tracker = undefined;
        return answer({ op: 'done' });
      case 'apply':
        receivePages(held, op);
        return answer({ op: 'done' });
      case 'finish':
        if (op.last) receivePages(held, op.last);
        settle(held);
        writeGlobals(clone.instance, op.globals);
        // The source's pointer at rest is the moved instance's pointer at rest.
        if (held.stack) held.stack.rest = held.stack.global.value as number;
        return answer({ op: 'done' });
      case 'settle':
        settle(held);
        return answer({ op: 'done' });
      case 'quiesce':
        collectGarbage();
        return answer({ op: 'done' });
      case 'hash':
        return answer({ op: 'hash', hash: hashMemory(clone.memory), memoryBytes: clone.memory.buffer.byteLength });
    }
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }

  function receivePages(held: LiveInstance, op: { pages: Uint32Array; bytes: Uint8Array; memoryBytes?: number }): void {
    applyPages(held.clone.memory, op.pages, op.bytes, op.memoryBytes);
    if (!held.received) return;
    if (held.received.length * PAGE_SIZE < held.clone.memory.buffer.byteLength) {
      const grown = new Uint8Array(held.clone.memory.buffer.byteLength / PAGE_SIZE);
      grown.set(held.received);
      held.received = grown;
    }
    for (const p of op.pages) held.received[p] = 1;
  }

  /** Round 0 is in: the snapshot's pages it did not cover are zero on the source. */
  function settle(held: LiveInstance): void {
    if (held.received) zeroUnreceived(held.clone.memory, held.received);
    held.received = undefined;
  }

  function answer(result: MigrationOpResult, transfer: ArrayBuffer[] = []): void {
    post({ type: 'migrated', id: msg.id, result }, transfer);
  }
}
