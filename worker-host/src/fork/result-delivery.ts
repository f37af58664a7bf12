/**
 * Where a clone's result goes. A job's large output is stored as an object of
 * the job first; a job's results go to its streams through JetStream and are
 * retried until acknowledged (a lost one would cost the clone's time limit and
 * a retry); a driver's inbox (tests, benchmarks) gets a plain publish.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { encode, FlurryError, isStorageFull, publishResult, publishTo, type BrokerLink, type CloneResult, type ForkRequest, type Logger, type PublishOutcome, type WireError } from '@flurry/core';
import type { ForkObjects } from './objects.js';

export class ResultDelivery {
  private readonly js: JetStreamClient;
  /** The host is exiting: results still being stored give up. */
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly link: BrokerLink,
    private readonly objects: ForkObjects,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  /** Stores the clone's output if the fork asks for it, then delivers the result. */
  async finish(req: ForkRequest, index: number, result: CloneResult): Promise<void> {
    const stored = await this.storeOutput(req, String(index), result);
    await this.deliver(req, String(index), 'error' in stored ? { ...result, ok: false, output: undefined, error: stored.error } : stored.result);
  }

  /**
   * A task clone's results of tasks `first` .. `first + result.taskRunMs.length - 1` (one message on their
   * JobSubjects.taskResults subject): its outcome, or why it was not stored. A result the stream refuses (the
   * same tasks' results were stored first) is not tried again.
   */
  async finishTasks(req: ForkRequest, first: number, result: CloneResult & { taskRunMs: number[] }): Promise<PublishOutcome | { error: WireError }> {
    const token = `${first}-${first + result.taskRunMs.length - 1}`;
    const stored = await this.storeOutput(req, token, result);
    if ('error' in stored) return stored;
    return (await this.deliver(req, token, stored.result, false)) ?? { error: { code: 'unavailable', message: `the results of tasks ${token} could not be stored` } };
  }

  /** A large output goes to the job's output store first; the result then names it. */
  private async storeOutput(req: ForkRequest, token: string, result: CloneResult): Promise<{ result: CloneResult } | { error: WireError }> {
    if (!(result.ok && req.objects?.outputPrefix && result.output && result.output.length >= (req.objects.minOutputBytes ?? 0))) return { result };
    const name = `${req.objects.outputPrefix}/${token}/${req.requestId}`;
    try {
      await this.objects.putOutput(name, result.output, () => this.closed);
      return { result: { ...result, output: undefined, outputObject: name } };
    } catch (err) {
      return { error: { code: isStorageFull(err) ? 'storage_full' : 'unavailable', message: `storing the output failed: ${(err as Error).message}` } };
    }
  }

  /** Publishes `result` as the job's result `token` (a clone's index, or a task job's `<first>-<last>`). */
  private async deliver(req: ForkRequest, token: string, result: CloneResult, retryRefused = true): Promise<PublishOutcome | undefined> {
    if (!req.perIndexResults) {
      publishTo(this.nc, req.entry === 'reduce' ? 'reduceResult' : 'forkResults', req.resultSubject, result);
      return undefined;
    }
    const bytes = encode(result);
    const subject = `${result.ok ? req.resultSubject : (req.failSubject ?? req.resultSubject)}.${token}`;
    const msgId = `${req.requestId}.${token}`;
    try {
      let outcome = await publishResult(this.js, this.link, subject, bytes, msgId, { stopped: () => this.closed });
      // The result kept for the index may be a forgery that the coordinator refuses and deletes: try again a few times.
      for (let wait = 250; retryRefused && outcome === 'refused' && wait <= 2000 && !this.closed; wait *= 2) {
        await new Promise((r) => setTimeout(r, wait));
        outcome = await publishResult(this.js, this.link, subject, bytes, msgId, { stopped: () => this.closed });
      }
      // Another attempt's result was first (a clone re-run elsewhere while this host was paused or cut off): this one is refused, never counted twice.
      if (outcome === 'refused' && retryRefused) this.log.info({ requestId: req.requestId, index: token, ok: result.ok }, 'clone result refused: the index has its result already');
      return outcome;
    } catch (err) {
      this.log.error({ requestId: req.requestId, index: token, err: (err as Error).message }, 'clone result lost: it could not be stored');
      // The results stream is full: say so on the failures stream, so that the coordinator fails the clone now, not at its time limit.
      if (retryRefused && result.ok && req.failSubject && err instanceof FlurryError && err.code === 'storage_full') {
        await this.deliver(req, token, { ...result, ok: false, output: undefined, outputObject: undefined, error: err.toWire() });
      }
      return undefined;
    }
  }

  /** Results still being stored give up (the host is exiting). */
  close(): void {
    this.closed = true;
  }
}
