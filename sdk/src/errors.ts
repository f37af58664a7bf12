/** The SDK's errors: one class per way a call can fail, each with a `name` and, where there is one, a `cause`. */
import type { ErrorCode, JobRecord } from './types.js';

/** What a FlurryApiError is built from. */
export interface FlurryApiErrorInit {
  status: number;
  code: ErrorCode | (string & {});
  message: string;
  requestId?: string;
  retryAfterSeconds?: number;
  cause?: unknown;
}

/**
 * The gateway answered, and the answer is a platform error (not a guest's own response).
 *
 * @example
 * try { await flurry.functions.get('nope') }
 * catch (err) { if (err instanceof FlurryApiError && err.code === 'not_found') ... }
 */
export class FlurryApiError extends Error {
  override readonly name = 'FlurryApiError';
  /** HTTP status of the gateway's answer. */
  readonly status: number;
  /** The gateway's error code; codes unknown to this SDK version pass through as strings. */
  readonly code: ErrorCode | (string & {});
  /** The gateway's request id, for its logs. */
  readonly requestId: string | undefined;
  /** From `Retry-After` (503s): how long to wait before trying again. */
  readonly retryAfterSeconds: number | undefined;

  constructor(init: FlurryApiErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/**
 * No answer came from the gateway: refused, reset, DNS failure. `cause` holds the underlying error.
 *
 * @example
 * catch (err) { if (err instanceof FlurryConnectionError) console.error('gateway down:', err.cause) }
 */
export class FlurryConnectionError extends Error {
  override readonly name: string = 'FlurryConnectionError';
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

/**
 * The answer did not arrive within the client's `timeoutMs`. A kind of connection error, so
 * `instanceof FlurryConnectionError` covers both.
 *
 * @example
 * catch (err) { if (err instanceof FlurryTimeoutError) retryLater() }
 */
export class FlurryTimeoutError extends FlurryConnectionError {
  override readonly name: string = 'FlurryTimeoutError';
}

/**
 * A job ended without a result: it failed or was cancelled. `job` is its final record, with
 * the job's error and each failed clone's error (`job.errors`).
 *
 * @example
 * try { await handle.wait() }
 * catch (err) { if (err instanceof FlurryJobError) for (const e of err.job.errors ?? []) console.error(e.index, e.message) }
 */
export class FlurryJobError extends Error {
  override readonly name = 'FlurryJobError';
  /** The job's error code; `cancelled` for a cancelled job without one. */
  readonly code: ErrorCode | 'cancelled' | (string & {});
  readonly job: JobRecord;

  constructor(job: JobRecord) {
    super(job.error?.message ?? `job ${job.id} ${job.state}`);
    this.code = job.error?.code ?? (job.state === 'cancelled' ? 'cancelled' : 'internal');
    this.job = job;
  }
}
