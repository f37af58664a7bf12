/**
 * A task clone's side of its job's task server (docs/jobs.md, "Tasks"): asks
 * for the next batch (reporting the tasks that failed since and the results
 * the stream refused as duplicates), and publishes each task's output as the
 * job's result of that task's index the moment it ends, without waiting for
 * it to be stored before the next task runs.
 */
import { call, FlurryError, type CloneResult, type ForkRequest, type Logger, type TaskReply, type WireError } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskSource } from '../guest/task-source.js';
import type { ResultDelivery } from './result-delivery.js';

/** How long a clone told "nothing now" waits before it asks again (the task server held that ask a while already). */
const ASK_AGAIN_MS = 10;
/** How long a clone keeps asking a task server that does not answer (a coordinator taking over answers within seconds). */
const GIVE_UP_MS = 60_000;

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
  private duplicates = 0;

  constructor(
    private readonly deps: TaskFeedDeps,
    private readonly req: ForkRequest & { tasks: NonNullable<ForkRequest['tasks']> },
    private readonly index: number,
    /** Ms from the fork request's arrival to the clone running, once it runs (every ask carries it). */
    private readonly startMs: () => number | undefined,
  ) {}

  async next(): Promise<number[]> {
    const since = Date.now();
    let wait = ASK_AGAIN_MS;
    for (;;) {
      const failed = this.failures;
      const duplicates = this.duplicates;
      this.failures = [];
      this.duplicates = 0;
      let reply: TaskReply;
      try {
        const startMs = this.startMs();
        reply = await call(this.deps.nc, 'tasks', this.req.tasks.subject, { requestId: this.req.requestId, hostId: this.deps.hostId, index: this.index, failed, duplicates, ...(startMs !== undefined && { startMs }) });
      } catch (err) {
        // Reported again with the next request.
        this.failures = failed.concat(this.failures);
        this.duplicates += duplicates;
        if (Date.now() - since > GIVE_UP_MS) throw new FlurryError('unavailable', `the job's task server did not answer for ${GIVE_UP_MS} ms: ${(err as Error).message}`);
        wait = Math.min(wait * 2, 2000);
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      if (!reply.ok) throw new FlurryError('unavailable', `the job's task server refused: ${reply.error.message}`);
      if (reply.tasks.length > 0 || reply.end) return reply.tasks;
      wait = ASK_AGAIN_MS;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  started(task: number): void {
    this.current = task;
  }

  done(task: number, output: Uint8Array, runMs: number): void {
    this.current = undefined;
    const { req, deps } = this;
    const result: CloneResult = { requestId: req.requestId, hostId: deps.hostId, index: task, ok: true, output, startMs: 0, runMs, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0 };
    void deps.results.finishTask(req, task, result).then((outcome) => {
      if (outcome === 'refused') this.duplicates++;
      // Not stored: counted against the task like a failure of its own, so that it runs again.
      else if (typeof outcome === 'object') this.failures.push({ task, error: outcome.error });
    });
  }

  failed(task: number, error: WireError): void {
    this.current = undefined;
    this.failures.push({ task, error });
  }
}
