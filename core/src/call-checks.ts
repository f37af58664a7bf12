/**
 * The checks of the messages every function call carries (InvokeRequest on
 * the host, InvokeReply on the gateway), by hand: zod's parse of one made
 * ~3.5 KiB of short-lived objects a call on the host's main thread (its
 * issues list, a copy of each header pair, the result wrappers), a fifth of
 * what the host allocated per call, and each scavenge came that much sooner.
 *
 * A hand check only accepts: it returns the message (unknown keys left out,
 * as zod's parse leaves them out) when it is certainly one, and undefined
 * otherwise, and the schema then decides and says why (checked-decode.ts).
 * So what is accepted never widens beyond the schema, and the reasons given
 * for bad messages stay the schema's; the tests hold both against it.
 *
 *   const request = CallChecks.InvokeRequest(decoded) ?? MessageSchemas.InvokeRequest.safeParse(decoded);
 */
import { CALL_LIMIT_BOUNDS, type InvokeLimits, type InvokeReply, type InvokeRequest } from './protocol.js';

type Fields = Record<string, unknown>;

function isMap(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isHeaders(v: unknown): v is [string, string][] {
  if (!Array.isArray(v)) return false;
  for (const pair of v) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return false;
  }
  return true;
}

function isIntIn(v: unknown, { min, max }: { min: number; max: number }): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** A call's own limits, or undefined when they are not certainly limits (an unknown or undefined key: the schema decides). */
function limitsOf(v: Fields): InvokeLimits | undefined {
  const out: InvokeLimits = {};
  for (const key in v) {
    const x = v[key];
    if (key === 'timeoutMs' && isIntIn(x, CALL_LIMIT_BOUNDS.timeoutMs)) out.timeoutMs = x;
    else if (key === 'outputBytes' && isIntIn(x, CALL_LIMIT_BOUNDS.outputBytes)) out.outputBytes = x;
    else return undefined;
  }
  return out;
}

/** A function call as the gateway sends it to a host, or undefined. */
function invokeRequest(v: unknown): InvokeRequest | undefined {
  if (!isMap(v)) return undefined;
  const { requestId, tenant, name, digest, method, path, query, headers, body, limits } = v;
  if (typeof requestId !== 'string' || typeof tenant !== 'string' || typeof name !== 'string' || typeof digest !== 'string'
    || typeof method !== 'string' || typeof path !== 'string' || typeof query !== 'string'
    || !isHeaders(headers) || !(body instanceof Uint8Array)) return undefined;
  const out: InvokeRequest = { requestId, tenant, name, digest, method, path, query, headers, body };
  if ('limits' in v) {
    const checked = isMap(limits) ? limitsOf(limits) : undefined;
    if (!checked) return undefined;
    out.limits = checked;
  }
  return out;
}

/** A host's answer to a function call that ran, or undefined (a refusal is left to the schema: it is not the hot path). */
function invokeReply(v: unknown): InvokeReply | undefined {
  if (!isMap(v) || v.ok !== true) return undefined;
  const { status, headers, body, hostId, durationMs } = v;
  // zod's number() takes finite numbers only.
  if (!Number.isFinite(status) || !isHeaders(headers) || !(body instanceof Uint8Array) || typeof hostId !== 'string' || !Number.isFinite(durationMs)) return undefined;
  return { ok: true, status: status as number, headers, body, hostId, durationMs: durationMs as number };
}

/** The kinds checked by hand first, each accepting only what its schema accepts. */
export const CallChecks = {
  InvokeRequest: invokeRequest,
  InvokeReply: invokeReply,
} as const;
