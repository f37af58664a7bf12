/**
 * Delivers finished jobs' callbacks, on the coordinator (the lease holder)
 * and apart from the job's run: a job is done when its record says so, its
 * callback follows. Every attempt is checked and signed again
 * (callback-address.ts, callback-signature.ts), retried with exponential
 * backoff up to the configured attempts, and its outcome written to the job
 * record (`record.callback`), so GET /v1/jobs/:id shows it and a coordinator
 * that takes over carries on where this one stood: a record whose callback
 * is `pending` gets its next attempt after the backoff counted from the last
 * one. Delivery is at least once: an attempt whose outcome was not recorded
 * (the coordinator died meanwhile) is made again.
 */
import { isBrokerFailure, TERMINAL_JOB_STATES, type Logger, type StoredJob } from '@flurry/core';
import type { JobStore } from '../jobs/job-store.js';
import { resolveCallbackTarget, type Resolver } from './callback-address.js';
import type { CallbackConfig } from './callback-config.js';
import { postCallback, type PostOutcome } from './callback-post.js';
import { SIGNATURE_HEADER, signatureHeader } from './callback-signature.js';

/** A failure message kept on the record is cut to this length. */
const MAX_ERROR_CHARS = 300;
/** How long to wait for the broker when the job record could not be read or written. */
const BROKER_RETRY_MS = 1000;

/** Whether a stored job has a callback still to deliver. */
export function callbackDue(stored: StoredJob): boolean {
  return stored.callbackUrl !== undefined && stored.record.callback?.state === 'pending' && TERMINAL_JOB_STATES.includes(stored.record.state);
}

/**
 * The wait before attempt `attempts + 1`: none before the first, then
 * `backoffMs` doubled for each attempt made, at most `maxBackoffMs`.
 *
 * @example
 * backoffBefore(3, { backoffMs: 1000, maxBackoffMs: 60_000 }); // 4000
 */
export function backoffBefore(attempts: number, c: Pick<CallbackConfig, 'backoffMs' | 'maxBackoffMs'>): number {
  if (attempts <= 0) return 0;
  return Math.min(c.maxBackoffMs, c.backoffMs * 2 ** Math.min(attempts - 1, 30));
}

export class CallbackDeliverer {
  /** Jobs (by KV key) whose callback is being delivered in this term as coordinator. */
  private delivering = new Set<string>();
  private leadership = new AbortController();

  constructor(
    private readonly store: Pick<JobStore, 'get' | 'update'>,
    private readonly config: CallbackConfig,
    private readonly log: Logger,
    private readonly resolve?: Resolver,
  ) {}

  /**
   * Delivers the job's callback if it is due and not being delivered already,
   * after `settled` (the job's run has written its last record).
   */
  offer(key: string, stored: StoredJob, settled: Promise<void> = Promise.resolve()): void {
    const delivering = this.delivering;
    if (!callbackDue(stored) || delivering.has(key)) return;
    delivering.add(key);
    const { signal } = this.leadership;
    void this.deliver(stored.record.tenant, stored.record.id, settled, signal)
      .catch((err: unknown) => this.log.warn({ jobId: stored.record.id, err: (err as Error).message }, 'callback delivery stopped by an error; a coordinator that takes over tries again'))
      .finally(() => delivering.delete(key));
  }

  /**
   * The lease is lost: stop; the next coordinator (this one again, too) reads
   * each pending callback from its record. An attempt in flight ends unrecorded.
   */
  stop(): void {
    this.leadership.abort();
    this.leadership = new AbortController();
    this.delivering = new Set();
  }

  private async deliver(tenant: string, jobId: string, settled: Promise<void>, signal: AbortSignal): Promise<void> {
    await settled;
    while (!signal.aborted) {
      try {
        if (await this.step(tenant, jobId, signal)) return;
      } catch (err) {
        // The job record could not be read or written: only a broker outage is worth waiting out.
        if (!isBrokerFailure(err)) throw err;
        if (!(await sleep(BROKER_RETRY_MS, signal))) return;
      }
    }
  }

  /** One attempt, if one is due; true when there is nothing more to do. */
  private async step(tenant: string, jobId: string, signal: AbortSignal): Promise<boolean> {
    const latest = await this.store.get(tenant, jobId);
    if (!latest || !callbackDue(latest.stored)) return true;
    const { stored, revision } = latest;
    const outcome = stored.record.callback!;
    const wait = (outcome.at ?? 0) + backoffBefore(outcome.attempts, this.config) - Date.now();
    if (wait > 0 && !(await sleep(wait, signal))) return true;
    const attempt = outcome.attempts + 1;
    const { callback: _, ...record } = stored.record;
    const result = await this.attempt(stored.callbackUrl!, tenant, jobId, JSON.stringify(record), attempt);
    if (signal.aborted) return true;
    const state = result.ok ? 'delivered' : attempt >= this.config.attempts ? 'failed' : 'pending';
    stored.record.callback = {
      state, attempts: attempt, at: Date.now(),
      ...(result.status !== undefined ? { lastStatus: result.status } : {}),
      ...(result.error !== undefined ? { lastError: result.error.slice(0, MAX_ERROR_CHARS) } : {}),
    };
    const fields = { jobId, attempt, status: result.status, err: result.error };
    if (result.ok) this.log.info(fields, 'callback delivered');
    else this.log.warn(fields, state === 'failed' ? 'callback failed; no attempts left' : 'callback attempt failed; retrying');
    // Compare-and-set: a record changed meanwhile (another coordinator) is read again.
    const written = await this.store.update(stored, revision);
    return written && state !== 'pending';
  }

  private async attempt(url: string, tenant: string, jobId: string, body: string, attempt: number): Promise<PostOutcome> {
    const secrets = this.config.secrets;
    if (!secrets) return { ok: false, error: 'this gateway has no callback secret (FLURRY_CALLBACK_SECRET)' };
    let target;
    try {
      target = await resolveCallbackTarget(url, this.config.allow, this.resolve);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    const headers = {
      [SIGNATURE_HEADER]: signatureHeader(secrets.forTenant(tenant), body, Math.floor(Date.now() / 1000)),
      'flurry-job-id': jobId,
      'flurry-callback-attempt': String(attempt),
    };
    return postCallback(target, body, headers, this.config.timeoutMs);
  }
}

/** Resolves true after `ms`, false at once when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
