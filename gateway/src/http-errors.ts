/**
 * The one place where errors become HTTP answers: `{ "error": { "code", "message" } }`, as a Hono
 * response (`errorResponse`) or as parts the call routes write themselves (call-route/call-answer.ts).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { FlurryError, isBrokerFailure, isStorageFull, type ErrorCode } from '@flurry/core';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_module: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  timeout: 504,
  guest_trap: 502,
  guest_error: 502,
  output_limit: 502,
  no_capacity: 503,
  unavailable: 503,
  conflict: 409,
  rate_limited: 429,
  // Kubernetes and Google Drive answer a full quota with 403 too: waiting does not help, so clients must not retry.
  quota_exceeded: 403,
  storage_full: 507,
  internal: 500,
};

/** Every error code, as the API document lists them. */
export const ERROR_CODES = Object.keys(STATUS) as [ErrorCode, ...ErrorCode[]];

export function statusFor(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** An error as the API says it: a FlurryError as it is; anything else by what it is (`internal`, logged, when unknown). */
export function asFlurryError(err: Error, log: { error(o: object, m: string): void } | undefined, requestId: string | undefined): FlurryError {
  if (err instanceof FlurryError) return err;
  if (err instanceof HTTPException) return new FlurryError(err.status === 413 ? 'payload_too_large' : err.status === 404 ? 'not_found' : 'bad_request', err.message || 'bad request');
  // The broker did not answer (it is going away, or just came back): the client retries, it is not a server fault.
  // A JetStream store at its max_bytes refused the write: say so instead of "internal error".
  if (isStorageFull(err)) return new FlurryError('storage_full', `the fleet's storage refused the write: ${err.message} (the store is at its byte limit, FLURRY_STORE_MAX_BYTES)`);
  if (isBrokerFailure(err)) return new FlurryError('unavailable', `the fleet's message broker did not answer: ${err.message}`, { retryAfterSeconds: 1 });
  log?.error({ err, requestId }, 'unhandled error');
  return new FlurryError('internal', 'internal error');
}

/** The error shape's parts: its status, its headers (`x-flurry-error: <code>`, the request id, `retry-after`) and its JSON body. */
export function errorAnswer(fe: FlurryError, requestId: string | undefined): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-flurry-error': fe.code };
  if (requestId) headers['x-flurry-request-id'] = requestId;
  if (fe.retryAfterSeconds !== undefined) headers['retry-after'] = String(fe.retryAfterSeconds);
  return { status: statusFor(fe.code), headers, body: JSON.stringify({ error: { code: fe.code, message: fe.message } }) };
}

/**
 * Hono's error handler. Platform errors carry `x-flurry-error: <code>`, so
 * clients can tell them from a guest's own 4xx/5xx answers.
 */
export function errorResponse(err: Error, c: Context): Response {
  const requestId = c.get('requestId' as never) as string | undefined;
  const log = c.get('log' as never) as { error(o: object, m: string): void } | undefined;
  const { status, headers, body } = errorAnswer(asFlurryError(err, log, requestId), requestId);
  return new Response(body, { status, headers });
}
