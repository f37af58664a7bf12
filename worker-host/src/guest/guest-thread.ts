/**
 * Entry point of a guest thread (worker_threads): warms parents and runs each
 * call in a fresh instance made from a snapshot, one at a time. Traps and
 * guest errors are answered as `failed`; they never end the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WireError } from '@flurry/core';
import { CallContext } from './call-context.js';
import { CurrentCall } from './current-call.js';
import { GuestExit, guestWireError } from './guest-failure.js';
import { buildImportObject, hostFunctions } from './import-object.js';
import { CloneFactory, makeWarmParent, runEntry, takeSnapshot } from './instance.js';
import type { FromThread, GuestThreadData, ToThread } from './thread-messages.js';

/** Progress reports of a `run` reach the main thread at most this often; the last one comes with the result. */
const PROGRESS_INTERVAL_MS = 50;

const port = parentPort!;
const { limits } = workerData as GuestThreadData;
const current = new CurrentCall();
const host = hostFunctions(current);
/** By warm key: the compiled clone module, its import object and the snapshot's restorer. */
const clones = new Map<string, CloneFactory>();
/** The one factory holding a spare instance: only the key served last keeps one, so spares cost one instance per thread. */
let spareHolder: CloneFactory | undefined;

port.on('message', (msg: ToThread) => {
  switch (msg.type) {
    case 'warm':
      return warm(msg);
    case 'load':
      forget(msg.key);
      // Cannot fail: the clone variant imports exactly what the parent did, and warming built those.
      clones.set(msg.key, new CloneFactory(msg.clone, buildImportObject(msg.clone, host), msg.snapshot));
      return;
    case 'call':
      return call(msg);
    case 'evict':
      return forget(msg.key);
  }
});

/** Drops a key's factory and its spare, so that its snapshot can be freed. */
function forget(key: string): void {
  const factory = clones.get(key);
  if (!factory) return;
  factory.dropSpare();
  if (spareHolder === factory) spareHolder = undefined;
  clones.delete(key);
}

function post(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

/** How a guest run ended: undefined for success, or the error to answer with. */
function outcome(context: CallContext, thrown: { error: unknown } | undefined, status: number): WireError | undefined {
  const ending = context.failure ?? thrown?.error;
  if (ending instanceof GuestExit) return ending.exitCode === 0 ? undefined : { code: 'guest_error', message: `exit ${ending.exitCode}` };
  if (ending !== undefined || thrown) return guestWireError(ending);
  if (status !== 0) return { code: 'guest_error', message: `guest returned status ${status}` };
  return undefined;
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
    post({ type: 'warmed', id: msg.id, snapshot: takeSnapshot(parent), initMs, ...logs });
  } catch (err) {
    post({ type: 'failed', id: msg.id, error: guestWireError(err), ...logs });
  }
}

function call(msg: Extract<ToThread, { type: 'call' }>): void {
  const clone = clones.get(msg.key);
  if (!clone) return post({ type: 'failed', id: msg.id, error: { code: 'not_found', message: `${msg.key} is not warm on this thread` }, logs: [], droppedLogLines: 0 });
  const context = new CallContext(msg.input, msg.request, limits, msg.entry === 'run' ? progressPoster(msg.id) : undefined);
  current.begin(context);
  const started = performance.now();
  let status = 0;
  let thrown: { error: unknown } | undefined;
  try {
    status = runEntry(clone.instantiate(current.memory), msg.entry, msg.args);
  } catch (error) {
    thrown = { error };
  }
  const durationMs = performance.now() - started;
  context.finish();
  current.end();
  const logs = { logs: context.logs.lines, droppedLogLines: context.logs.dropped };
  const error = outcome(context, thrown, status);
  if (error) post({ type: 'failed', id: msg.id, error, ...logs });
  else {
    const body = context.output.take();
    post({ type: 'result', id: msg.id, status: context.status, headers: context.headers, body, durationMs, progress: context.progress, ...logs }, [body.buffer as ArrayBuffer]);
  }
  prepareSpare(clone);
}

/** The answer is on its way; make the next instance while no call is waiting. */
function prepareSpare(clone: CloneFactory): void {
  if (spareHolder !== clone) spareHolder?.dropSpare();
  spareHolder = clone;
  try {
    clone.prepareSpare();
  } catch {
    // No spare then (out of memory, say): the next call makes its own instance and reports what fails.
  }
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
