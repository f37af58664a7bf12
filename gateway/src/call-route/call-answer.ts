/**
 * Writes a call route's answer on Node's ServerResponse, with the headers the
 * Hono app's answers had (node-server's Response to Node conversion): header
 * names in lower case, a repeated guest header's values joined with ", "
 * (`set-cookie` kept apart), `content-type: text/plain; charset=UTF-8` when
 * none was set, `content-length` for a body; HEAD, 204 and 304 without a body.
 *
 * The guest's answer keeps its own headers but hop-by-hop ones and any
 * `x-flurry-*` (a guest must not be able to forge an error marker), and gets
 * the request id, the host, a service's instance, the guest's time and the
 * `traceparent`. A refusal
 * has the error shape of http-errors.ts with the request id, the
 * `traceparent` and the `link` to the API's description.
 */
import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { formatTraceparent, TRACEPARENT, type FlurryError, type TraceContext } from '@flurry/core';
import { API_DESCRIPTION_LINK } from '../api/api-app.js';
import { errorAnswer } from '../http-errors.js';
import type { InvokeResult } from '../invoker.js';

/** Headers a guest may not set: the gateway owns framing. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade']);
const DEFAULT_CONTENT_TYPE = 'text/plain; charset=UTF-8';

/** What the request was, for its answer. */
export interface Asked {
  method: string;
  requestId: string;
  trace: TraceContext;
}

/** A guest's answer: a function's, or a service instance's (which names the instance). */
export type GuestAnswer = InvokeResult & { instanceId?: string };

/** The guest's answer. Throws (before writing anything) when a header cannot be written; the caller then answers `internal`. */
export function writeGuestAnswer(res: ServerResponse, asked: Asked, reply: GuestAnswer): void {
  const headers: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
  for (const [name, value] of reply.headers) {
    const lower = name.toLowerCase();
    if (HOP_HEADERS.has(lower) || lower.startsWith('x-flurry-')) continue;
    const trimmed = trimHttpWhitespace(value);
    const earlier = headers[lower];
    if (lower === 'set-cookie') headers[lower] = earlier === undefined ? [trimmed] : [...(earlier as string[]), trimmed];
    else headers[lower] = earlier === undefined ? trimmed : `${earlier as string}, ${trimmed}`;
  }
  headers['x-flurry-request-id'] = asked.requestId;
  headers['x-flurry-host'] = reply.hostId;
  if (reply.instanceId !== undefined) headers['x-flurry-instance'] = reply.instanceId;
  headers['x-flurry-duration-ms'] = reply.durationMs.toFixed(3);
  headers[TRACEPARENT] = formatTraceparent(asked.trace);
  headers['content-type'] ??= DEFAULT_CONTENT_TYPE;
  const nullBody = reply.status === 204 || reply.status === 304 || asked.method === 'HEAD';
  if (!nullBody) headers['content-length'] = reply.body.byteLength;
  res.writeHead(reply.status, headers);
  if (nullBody) res.end();
  else res.end(reply.body);
}

/** A refusal or failure of the platform. */
export function writeErrorAnswer(res: ServerResponse, asked: Asked, error: FlurryError): void {
  const { status, headers, body } = errorAnswer(error, asked.requestId);
  const out: OutgoingHttpHeaders = headers;
  out[TRACEPARENT] = formatTraceparent(asked.trace);
  out.link = API_DESCRIPTION_LINK;
  if (asked.method !== 'HEAD') out['content-length'] = Buffer.byteLength(body);
  // The reason named: a guest's answer that failed to be written left its own on the response.
  res.writeHead(status, STATUS_CODES[status], out);
  if (asked.method === 'HEAD') res.end();
  else res.end(body);
}

/** Drops leading and trailing HTTP whitespace (tab, space, CR, LF), as `Headers` does to a value. */
function trimHttpWhitespace(value: string): string {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  const ws = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;
  return ws(first) || ws(last) ? value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '') : value;
}
