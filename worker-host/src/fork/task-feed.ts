/**
 * A task clone's side of its job's task server (docs/jobs.md, "Tasks"): asks
 * for the next batch (reporting the tasks that failed since), and publishes
 * the outputs of the tasks it finished as the job's results, several
 * consecutive tasks in one message (framed per task): each at most
 * TASK_RESULT_LAG_MS after its task ended, and all of them before an ask
 * the guest waits for (the batch asked ahead was empty), without waiting for
 * them to be stored before the next task runs. The task server hands a clone
 * batches from a consecutive range of its own, so a run goes on across
 * batches. A small task's own message (its store, its ack, the
 * coordinator hearing it) cost more of the fleet's CPU than a 12 ms task is
 * worth.
 *
 * It asks ahead: once as the clone starts (while its instance is made), and
 * again as the last task of each batch starts, so that the next batch is
 * there when the guest asks and the clone does not sit out a round trip to
 * the coordinator between batches. An ask ahead takes only tasks nobody
 * holds and is answered at once; when it brings none, the guest's own ask
 * goes out as before (held, backups, `end`).
 */
import { call, FlurryError, frameReduceInput, TASK_RESULT_LAG_MS, type CloneResult, type ForkRequest, type Logger, type TaskReply, type TaskRequest, type WireError } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskSource } from '../guest/task-source.js';
import type { ResultDelivery } from './result-delivery.js';

/** How long a clone told "nothing now" waits before it asks again (the task server held that ask a while already). */
const ASK_AGAIN_MS = 10;
/** How long a clone keeps asking a task server that does not answer (a coordinator taking over answers within seconds). */
const GIVE_UP_MS = 60_000;
/** Finished tasks' outputs sent together at most this large (well under the size that goes through the object store). */
const RESULTS_MAX_BYTES = 256 * 1024;

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
  /** The answer to the ask ahead under way: the next batch, or none. */
  private ahead?: Promise<number[]>;
  /** The last task of the batch the guest runs: its start sends the ask ahead. */
  private lastOfBatch?: number;

  constructor(
    private readonly deps: TaskFeedDeps,
    private readonly req: ForkRequest & { tasks: NonNullable<ForkRequest['tasks']> },
    private readonly index: number,
    /** Ms from the fork request's arrival to the clone running, once it runs (every ask carries it). */
    private readonly startMs: () => number | undefined,
  ) {}

  /** Asks for the next batch while the guest is busy (starting, or running its batch's last task); `next` takes the answer. */
  askAhead(): void {
    const failed = this.failures;
    this.failures = [];
    this.ahead = call(this.deps.nc, 'tasks', this.req.tasks.subject, { ...this.request(failed), ahead: true }).then((reply) => {
      if (reply.ok) return reply.tasks;
      this.failures = failed.concat(this.failures);
      return [];
    }, () => {
      // Not heard: reported again with the next ask.
      this.failures = failed.concat(this.failures);
      return [];
    });
  }

  async next(): Promise<number[]> {
    const ahead = this.ahead;
    this.ahead = undefined;
    const early = ahead ? await ahead : [];
    if (early.length > 0) {
      // A task of the batch that just ended failed: reported now (with another ask ahead), not a batch later.
      if (this.failures.length > 0) this.askAhead();
      // The finished tasks wait for the timer: the next batch usually goes on from them (the clone's own range), one message for both.
      return this.batch(early);
    }
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
      if (reply.tasks.length > 0 || reply.end) return this.batch(reply.tasks);
      wait = ASK_AGAIN_MS;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private request(failed: TaskRequest['failed']): TaskRequest {
    const startMs = this.startMs();
    return { requestId: this.req.requestId, hostId: this.deps.hostId, index: this.index, failed, ...(startMs !== undefined && { startMs }) };
  }

  private batch(tasks: number[]): number[] {
    this.lastOfBatch = tasks.at(-1);
    return tasks;
  }

  started(task: number): void {
    this.current = task;
    if (task === this.lastOfBatch && !this.ahead) this.askAhead();
  }

  done(task: number, output: Uint8Array, runMs: number): void {
    this.current = undefined;
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
    const result = {
      requestId: req.requestId, hostId: deps.hostId, index: first, ok: true, output: frameReduceInput(finished.map((f) => f.output)), taskRunMs,
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
  }
}
