/**
 * A task clone's side of its job's task server (docs/jobs.md, "Tasks"): it
 * runs a range of tasks the server gave it on its own, handing its guest
 * thread small batches from the range's front, and asks the server only when
 * the range runs dry (or to report a failed task); the server learns of its
 * progress from the results it sends anyway. The server may ask it to give
 * away the back half of what it has not handed out yet (`split`, for a clone
 * whose range is dry). It publishes the outputs of the tasks it finished as
 * the job's results, several consecutive tasks in one message (framed per
 * task): each at most TASK_RESULT_LAG_MS after its task ended, and all of
 * them before an ask the guest waits for, without waiting for them to be
 * stored before the next task runs. A small task's own message (its store,
 * its ack, the coordinator hearing it) cost more of the fleet's CPU than a
 * 12 ms task is worth, and so did an ask per batch.
 *
 * It asks ahead: once as the clone starts (while its instance is made), and
 * again as it hands out the last batch of its range, so that more is there
 * when the guest asks and the clone does not sit out a round trip to the
 * coordinator. An ask ahead is answered at once and never with a backup;
 * when it brings nothing, the guest's own ask goes out as before (held,
 * backups, `end`).
 */
import { call, FlurryError, frameReduceInput, TASK_RESULT_LAG_MS, type CloneResult, type ForkRequest, type Logger, type TaskRange, type TaskReply, type TaskRequest, type TaskSplitReply, type WireError } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskSource } from '../guest/task-source.js';
import type { ResultDelivery } from './result-delivery.js';

/** How long a clone told "nothing now" waits before it asks again (the task server held that ask a while already). */
const ASK_AGAIN_MS = 10;
/** How long a clone keeps asking a task server that does not answer (a coordinator taking over answers within seconds). */
const GIVE_UP_MS = 60_000;
/** Finished tasks' outputs sent together at most this large (well under the size that goes through the object store). */
const RESULTS_MAX_BYTES = 256 * 1024;
/**
 * A batch handed to the guest thread holds about this much work by the clone's mean task time: a batch is
 * one round trip to the thread, and what it holds can no longer be split away. Never more than half of
 * what the range has left, so batches shrink towards its end.
 */
export const BATCH_MS = 100;

interface Finished {
  task: number;
  output: Uint8Array;
  runMs: number;
}

export interface TaskFeedDeps {
  nc: NatsConnection;
  hostId: string;
  results: ResultDelivery;
  log: Logger;
}

export class TaskFeed implements TaskSource {
  /** The task running now, if any: a clone ended by its time limit failed in it. */
  current: number | undefined;
  private failures: { task: number; error: WireError }[] = [];
  /** Consecutive tasks finished and not sent yet, and their outputs' bytes; sent by `sendFinished`, at the latest by `timer`. */
  private finished: Finished[] = [];
  private finishedBytes = 0;
  private timer?: NodeJS.Timeout;
  /** The ask under way (ahead, or a report of failures): its answer is taken into `single` or `range`. */
  private ahead?: Promise<void>;
  /** Tasks given one by one (given back, backups): run before the range. */
  private single: number[] = [];
  /** The range given last (`lo` names it to the server; `hi` moves down with each split), and `front`, its first task not handed to the guest yet. */
  private range?: TaskRange;
  private front = 0;
  /** The guest's task times so far, for the batch size. */
  private ranMs = 0;
  private ranCount = 0;

  constructor(
    private readonly deps: TaskFeedDeps,
    private readonly req: ForkRequest & { tasks: NonNullable<ForkRequest['tasks']> },
    readonly index: number,
    /** Ms from the fork request's arrival to the clone running, once it runs (every ask carries it). */
    private readonly startMs: () => number | undefined,
    /**
     * With `tasks.keepOutputs` (this host runs the job's reduce): keeps each run's framed outputs as published,
     * for the reduce (kept-outputs.ts). Not a run whose outputs go to the object store (the coordinator reads those back).
     */
    private readonly keep?: (first: number, count: number, framed: Uint8Array) => void,
  ) {}

  get requestId(): string {
    return this.req.requestId;
  }

  /** Asks while the guest is busy (starting, or running its range's last batch); `next` takes the answer. */
  askAhead(): void {
    this.ask({ ahead: true });
  }

  /** The failures not reported yet go now, in an ask of their own, unless one is under way (they go with it or the next). */
  private report(): void {
    if (!this.ahead && this.failures.length > 0) this.ask({ ahead: true, report: !this.dry });
  }

  private ask(how: Pick<TaskRequest, 'ahead' | 'report'>): void {
    const failed = this.failures;
    this.failures = [];
    this.ahead = call(this.deps.nc, 'tasks', this.req.tasks.subject, { ...this.request(failed), ...how }).then((reply) => {
      if (reply.ok) this.take(reply);
      else this.failures = failed.concat(this.failures);
    }, () => {
      // Not heard: reported again with the next ask.
      this.failures = failed.concat(this.failures);
    }).finally(() => {
      this.ahead = undefined;
      this.report();
    });
  }

  /** Tasks of the range not handed to the guest yet. */
  private get rangeLeft(): number {
    return this.range ? Math.max(0, this.range.hi - this.front) : 0;
  }

  /** Nothing left to hand to the guest. */
  private get dry(): boolean {
    return this.single.length === 0 && this.rangeLeft === 0;
  }

  private take(reply: Extract<TaskReply, { ok: true }>): void {
    this.single.push(...reply.tasks);
    // Only a clone whose range ran dry asks for one (a report gets none).
    if (reply.range && this.rangeLeft === 0) {
      this.range = reply.range;
      this.front = reply.range.lo;
    }
  }

  /** The next batch for the guest from what the clone has: single tasks, else its range's front. */
  private batch(): number[] {
    if (this.single.length > 0) return this.single.splice(0);
    const left = this.rangeLeft;
    if (left === 0) return [];
    const byTime = this.ranCount === 0 ? 1 : Math.floor(BATCH_MS / Math.max(this.ranMs / this.ranCount, 0.1));
    const size = Math.max(1, Math.min(byTime, Math.ceil(left / 2)));
    const tasks = Array.from({ length: size }, (_, k) => this.front + k);
    this.front += size;
    return tasks;
  }

  /**
   * The task server takes the back half of what the range `lo` names has not handed out (for a clone that
   * ran dry): the range ends where this answer says. Refused for another range (the one named was replaced).
   */
  split(lo: number): TaskSplitReply {
    const range = this.range;
    if (!range || range.lo !== lo) return { ok: false, error: { code: 'conflict', message: `clone ${this.index} of ${this.req.requestId} runs no range from task ${lo}` } };
    // Rounded up: a last task not handed out goes to the clone that is idle, not after the owner's running one.
    range.hi -= Math.ceil(this.rangeLeft / 2);
    return { ok: true, hi: range.hi };
  }

  async next(): Promise<number[]> {
    for (;;) {
      if (this.ahead) await this.ahead;
      const tasks = this.batch();
      if (tasks.length > 0) {
        // The range's last batch: more is asked for while it runs.
        if (this.dry && !this.ahead) this.askAhead();
        return tasks;
      }
      if (this.ahead) continue;
      const reply = await this.askWaiting();
      if (reply.end && reply.tasks.length === 0 && !reply.range) return [];
      this.take(reply);
    }
  }

  /** Asks with nothing to run (the guest waits): again after a "nothing now", for up to GIVE_UP_MS while the server does not answer. */
  private async askWaiting(): Promise<Extract<TaskReply, { ok: true }>> {
    // Published before the ask on the same connection: the task server hears them first (with none left, it may answer `end`).
    this.sendFinished();
    const since = Date.now();
    let wait = ASK_AGAIN_MS;
    for (;;) {
      const failed = this.failures;
      this.failures = [];
      let reply: TaskReply;
      try {
        reply = await call(this.deps.nc, 'tasks', this.req.tasks.subject, this.request(failed));
      } catch (err) {
        // Reported again with the next request.
        this.failures = failed.concat(this.failures);
        if (Date.now() - since > GIVE_UP_MS) throw new FlurryError('unavailable', `the job's task server did not answer for ${GIVE_UP_MS} ms: ${(err as Error).message}`);
        wait = Math.min(wait * 2, 2000);
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      if (!reply.ok) throw new FlurryError('unavailable', `the job's task server refused: ${reply.error.message}`);
      if (reply.tasks.length > 0 || reply.range || reply.end) return reply;
      wait = ASK_AGAIN_MS;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private request(failed: TaskRequest['failed']): TaskRequest {
    const startMs = this.startMs();
    const range = this.range && { lo: this.range.lo, hi: this.range.hi };
    return { requestId: this.req.requestId, hostId: this.deps.hostId, index: this.index, failed, ...(startMs !== undefined && { startMs }), ...(range && { range }) };
  }

  started(task: number): void {
    this.current = task;
  }

  done(task: number, output: Uint8Array, runMs: number): void {
    this.current = undefined;
    this.ranMs += runMs;
    this.ranCount++;
    const last = this.finished.at(-1);
    if (last && (last.task + 1 !== task || this.finishedBytes + output.length > RESULTS_MAX_BYTES)) this.sendFinished();
    this.finished.push({ task, output, runMs });
    this.finishedBytes += output.length;
    this.timer ??= setTimeout(() => this.sendFinished(), TASK_RESULT_LAG_MS);
  }

  /** Publishes the finished tasks not sent yet as one result (the job's results of tasks first..last); also when the clone ends, however it ends. */
  sendFinished(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const finished = this.finished;
    if (finished.length === 0) return;
    this.finished = [];
    this.finishedBytes = 0;
    const { req, deps } = this;
    const first = finished[0].task;
    const taskRunMs = finished.map((f) => f.runMs);
    const output = frameReduceInput(finished.map((f) => f.output));
    if (this.keep && output.length < (req.objects?.minOutputBytes ?? Infinity)) this.keep(first, finished.length, output);
    const result = {
      requestId: req.requestId, hostId: deps.hostId, index: first, ok: true, output, taskRunMs,
      startMs: 0, runMs: taskRunMs.reduce((a, b) => a + b, 0), pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0,
    } satisfies CloneResult;
    void deps.results.finishTasks(req, first, result).then((outcome) => {
      // Not stored: counted against each task like a failure of its own, so that it runs again.
      if (typeof outcome === 'object') for (const f of finished) this.failures.push({ task: f.task, error: outcome.error });
    });
  }

  failed(task: number, error: WireError): void {
    this.current = undefined;
    this.failures.push({ task, error });
    // Reported now, not when the range runs dry: the task runs again elsewhere.
    this.report();
  }
}
