/**
 * One request to a service (`ANY /svc/:name/*`, docs/services.md), as the
 * call routes (call-route/call-handler.ts) hand it over: the body read under
 * the limit, the guest's headers, the routing key (header `x-flurry-route`,
 * else cookie `flurry-route`) and the request id the host runs it under,
 * then forwarded by the service router to one instance.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { InvokeRequest, TraceContext } from '@flurry/core';
import type { InvokeResult } from '../invoker.js';
import { readIncomingBody } from '../request-body.js';
import { rawHeader, rawHeaderList } from '../request-headers.js';
import type { ServiceRouter } from './service-router.js';

const ROUTE_HEADER = 'x-flurry-route';
const ROUTE_COOKIE = 'flurry-route';

/** What the call routes know of a service request. */
export interface ServiceCall {
  tenant: string;
  name: string;
  method: string;
  /** The path the guest sees (`/` at least). */
  path: string;
  query: string;
  requestId: string;
  trace: TraceContext;
}

/** The instance's answer, with the instance that gave it. */
export type ServiceAnswer = InvokeResult & { instanceId: string };

export async function callService(router: Pick<ServiceRouter, 'forward'>, incoming: IncomingMessage, call: ServiceCall, opts: { maxBodyBytes: number; hideAuthorization: boolean }): Promise<ServiceAnswer> {
  const body = await readIncomingBody(incoming, opts.maxBodyBytes);
  const headers = rawHeaderList(incoming, opts.hideAuthorization);
  const routeKey = rawHeader(incoming, ROUTE_HEADER) || cookie(rawHeader(incoming, 'cookie'), ROUTE_COOKIE) || undefined;
  // The host runs each request id once (a resend gets the first reply): an id the client chose, which it may
  // reuse, gets a suffix of its own; one the gateway made is unique already.
  const requestId = call.requestId === rawHeader(incoming, 'x-request-id') ? `${call.requestId}.${randomBytes(6).toString('hex')}` : call.requestId;
  return router.forward(call.tenant, call.name, (record): InvokeRequest => ({
    requestId,
    tenant: record.tenant,
    name: record.function,
    digest: record.digest,
    method: call.method,
    path: call.path,
    query: call.query,
    headers,
    body,
  }), routeKey, call.trace);
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return percentDecoded(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** A cookie value is percent-encoded by convention only: one that is not (a stray `%`) is a routing key as it stands. */
function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
