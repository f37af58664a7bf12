/**
 * A task clone in its guest thread (docs/guest-abi.md, "Tasks"): one instance
 * of the snapshot, `on_restore` once, then, batch after batch from the job's
 * task server (asked through the pool), `run_task(task, tasks)` for each task.
 * What the guest writes during one call is that task's output, posted as soon
 * as the task ends; a task that fails is reported and the loop goes on (after
 * a trap in a fresh instance: the trapped one's state is not to be trusted).
 */
import type { WireError } from '@flurry/core';
import { CallContext, type CallLimits } from './call-context.js';
import { outcome } from './call-outcome.js';
import type { GuestLogLine } from './call-types.js';
import type { CurrentCall } from './current-call.js';
import { GuestFailure } from './guest-failure.js';
import { runOnRestore, type Clone, type CloneFactory } from './instance.js';
import type { RegistrationSlot } from './registration-slot.js';
import type { MemoryStats, PagingStats } from './snapshot-memory.js';
import type { FromThread, ToThread } from './thread-messages.js';

type CallMessage = Extract<ToThread, { type: 'call' }>;

/**
 * The thread's task loops: the pool's answers to their `want`, and the
 * messages held back while one runs (a snapshot evicted meanwhile must not
 * go from under it; they are handled once it ends).
 */
export class TaskLoops {
  private readonly waiters = new Map<number, (answer: Extract<ToThread, { type: 'tasks' }>) => void>();
  private held: ToThread[] | undefined;

  /** True when the message was taken: a `tasks` answer, or one held back while a loop runs. */
  intercept(msg: ToThread): boolean {
    if (msg.type === 'tasks') {
      const waiter = this.waiters.get(msg.id);
      this.waiters.delete(msg.id);
      waiter?.(msg);
      return true;
    }
    if (!this.held) return false;
    this.held.push(msg);
    return true;
  }

  /** Runs a `run_task` call; then `after`, then `handle` for each message held back meanwhile. */
  run(msg: CallMessage, deps: Omit<TaskLoopDeps, 'nextTasks'>, after: () => void, handle: (msg: ToThread) => void): void {
    this.held = [];
    const nextTasks = (id: number) => new Promise<Extract<ToThread, { type: 'tasks' }>>((resolve) => this.waiters.set(id, resolve));
    runTaskLoop(msg, { ...deps, nextTasks }).catch((err: unknown) => {
      deps.post({ type: 'failed', id: msg.id, error: { code: 'internal', message: `the task loop failed: ${(err as Error).message}` }, logs: [], droppedLogLines: 0 });
    }).finally(() => {
      const later = this.held ?? [];
      this.held = undefined;
      after();
      for (const m of later) handle(m);
    });
  }
}

export interface TaskLoopDeps {
  factory: CloneFactory;
  current: CurrentCall;
  registrationSlot: RegistrationSlot;
  limits: CallLimits;
  post(msg: FromThread, transfer?: ArrayBuffer[]): void;
  /** Resolves with the pool's `tasks` answer to this call's `want`. */
  nextTasks(id: number): Promise<Extract<ToThread, { type: 'tasks' }>>;
}

/** Runs a `run_task` call (its `args` are [tasks]) to its end, and posts its result or failure. */
export async function runTaskLoop(msg: CallMessage, d: TaskLoopDeps): Promise<void> {
  const { factory, current, registrationSlot, post } = d;
  const tasks = msg.args[0];
  const started = performance.now();
  const logs: GuestLogLine[] = [];
  let dropped = 0;
  let clone: Clone | undefined;
  let memory: MemoryStats | undefined;
  let failure: WireError | undefined;
  let startMs = 0;

  const keepLogs = (context: CallContext) => {
    for (const line of context.logs.lines) {
      if (logs.length < d.limits.maxLogLines) logs.push(line);
      else dropped++;
    }
    dropped += context.logs.dropped;
  };
  const endClone = () => {
    if (!clone) return;
    const paging: PagingStats = clone.restored.finish();
    if (!memory) memory = { mode: factory.mode, restoreMs: clone.restoreMs, spare: clone.spare, createdAt: performance.timeOrigin + started + clone.restoreMs, ...paging };
    else for (const k of ['pagesFromStore', 'zeroPages', 'pagesWaited', 'faultWaitMs'] as const) memory[k] += paging[k];
    clone = undefined;
    registrationSlot.set(undefined);
  };
  /** A fresh instance, `on_restore` run; the error when that failed. */
  const fresh = (): WireError | undefined => {
    const context = new CallContext(msg.input, undefined, d.limits);
    current.begin(context);
    let thrown: { error: unknown } | undefined;
    try {
      clone = factory.instantiate(current.memory);
      registrationSlot.set(clone.restored.registration);
      if (typeof clone.instance.exports.run_task !== 'function') throw new GuestFailure('bad_request', 'the module does not export run_task');
      runOnRestore(clone.instance);
    } catch (error) {
      thrown = { error };
    }
    context.finish();
    current.end();
    keepLogs(context);
    const error = outcome(context, thrown, 0);
    if (error) endClone();
    return error;
  };

  failure = fresh();
  if (!failure) {
    startMs = performance.now() - started;
    if (msg.notifyStart) post({ type: 'started', id: msg.id, startMs });
  }
  outer: while (!failure) {
    post({ type: 'task', id: msg.id, step: { kind: 'want' } });
    const answer = await d.nextTasks(msg.id);
    if (answer.error) failure = answer.error;
    if (answer.error || answer.tasks.length === 0) break;
    for (const task of answer.tasks) {
      if (!clone && (failure = fresh())) break outer;
      post({ type: 'task', id: msg.id, step: { kind: 'start', task } });
      const context = new CallContext(msg.input, undefined, d.limits);
      current.begin(context);
      current.memory.attach(clone!.memory);
      const t0 = performance.now();
      let status = 0;
      let thrown: { error: unknown } | undefined;
      try {
        status = Number((clone!.instance.exports.run_task as (t: number, n: number) => unknown)(task, tasks) ?? 0);
      } catch (error) {
        thrown = { error };
      }
      context.finish();
      current.end();
      keepLogs(context);
      const error = outcome(context, thrown, status);
      if (error) {
        post({ type: 'task', id: msg.id, step: { kind: 'failed', task, error } });
        if (thrown || context.failure) endClone();
        continue;
      }
      const output = context.output.take();
      post({ type: 'task', id: msg.id, step: { kind: 'done', task, output, runMs: performance.now() - t0 } }, [output.buffer as ArrayBuffer]);
    }
  }
  endClone();
  const guestLogs = { logs, droppedLogLines: dropped };
  if (failure || !memory) return post({ type: 'failed', id: msg.id, error: failure ?? { code: 'internal', message: 'the clone was not made' }, ...guestLogs });
  const body = new Uint8Array(0);
  post({ type: 'result', id: msg.id, status: 200, headers: [], body, durationMs: performance.now() - started, startMs, memory, ...guestLogs }, [body.buffer]);
}
