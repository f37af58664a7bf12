/**
 * Serves the call routes (call-routes.ts) on Node's HTTP server, in front of
 * the Hono app: a request for one of them is answered here, anything else is
 * left to the app (`false`). The framework's request and response objects and
 * its middleware chain cost a call about 120 µs of CPU and 15 KiB
 * (docs/benchmarks.md, "The gateway's own work per call"); the checks are the
 * ones the app's middleware makes, as the same functions, in the same order:
 *
 *   function: request id, trace -> API key -> request rate -> broker up (and
 *             watched) -> concurrent calls -> the invoke's query -> function
 *             -> body -> call
 *   service:  request id, trace -> API key -> request rate -> concurrent
 *             calls -> body -> the service router (services/service-call.ts),
 *             which rides a broker outage out itself: it holds the request
 *             while the broker is away and sends it again when the outage
 *             made its outcome unknown
 *
 * and every refusal has the app's error shape (call-answer.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TRACEPARENT, type BrokerLink, type InvokeRequest, type Logger } from '@flurry/core';
import type { KeyRing } from '../auth/key-ring.js';
import { whileBrokerUp } from '../broker-watch.js';
import type { FunctionRegistry } from '../function-registry.js';
import { asFlurryError } from '../http-errors.js';
import type { InvokeResult, Invoker } from '../invoker.js';
import { logRequest, traceFrom } from '../metrics/trace-context.js';
import type { ConcurrentCalls } from '../quotas/concurrent-calls.js';
import { inCallSlot, takeRequest } from '../quotas/limit-middleware.js';
import type { RequestRate } from '../quotas/request-rate.js';
import { drainUnread, readIncomingBody } from '../request-body.js';
import { requestIdFrom } from '../request-id.js';
import { rawHeader, rawHeaderList } from '../request-headers.js';
import { callService } from '../services/service-call.js';
import type { Services } from '../services/services.js';
import { writeErrorAnswer, writeGuestAnswer, type Asked, type GuestAnswer } from './call-answer.js';
import { invokePath, matchCallRoute, type CallRoute } from './call-routes.js';
import { requestTarget, type RequestTarget } from './request-target.js';

export interface CallHandlerDeps {
  link: BrokerLink;
  registry: Pick<FunctionRegistry, 'get'>;
  invoker: Pick<Invoker, 'invoke'>;
  /** Without it the `/svc` routes are the app's (no route). */
  services?: Pick<Services, 'router'>;
  auth: KeyRing;
  log: Logger;
  maxBodyBytes: number;
  limits?: { rate: RequestRate; calls: ConcurrentCalls };
  /** The host a request without a Host header is taken to be for (the listener's address, as node-server takes it). */
  defaultHost?: string;
}

/** A Node request listener for the call routes: answers and returns true for a request of theirs, else returns false. */
export type CallHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function callHandler(deps: CallHandlerDeps): CallHandler {
  return (req, res) => {
    const target = requestTarget(req, deps.defaultHost);
    if (!target) return false;
    const method = req.method ?? 'GET';
    const route = matchCallRoute(method, target.path, deps.services !== undefined);
    if (!route) return false;
    const asked: Asked = { method, requestId: requestIdFrom(rawHeader(req, 'x-request-id')), trace: traceFrom(rawHeader(req, TRACEPARENT)) };
    void serveCall(deps, req, res, asked, target, route);
    return true;
  };
}

async function serveCall(deps: CallHandlerDeps, req: IncomingMessage, res: ServerResponse, asked: Asked, target: RequestTarget, route: CallRoute): Promise<void> {
  try {
    const reply = await answer(deps, req, asked, target, route);
    try {
      writeGuestAnswer(res, asked, reply);
    } catch (err) {
      // A header the guest set that HTTP cannot carry (nothing was written).
      writeErrorAnswer(res, asked, asFlurryError(err as Error, deps.log, asked.requestId));
    }
  } catch (err) {
    const error = asFlurryError(err as Error, deps.log, asked.requestId);
    if (res.headersSent) res.destroy(error);
    else writeErrorAnswer(res, asked, error);
  }
  drainUnread(req);
  logRequest(deps.log, asked.requestId, asked.trace, asked.method, target.path, res.statusCode);
}

/** The checks every call has, then the function's or the service's. */
async function answer(deps: CallHandlerDeps, req: IncomingMessage, asked: Asked, target: RequestTarget, route: CallRoute): Promise<GuestAnswer> {
  const { tenant } = deps.auth.identify(rawHeader(req, 'authorization'));
  if (deps.limits) takeRequest(deps.limits.rate, tenant);
  const calls = deps.limits?.calls;
  if (route.to === 'service') {
    const call = { tenant, name: route.name, method: asked.method, path: route.path ?? '/', query: target.query, requestId: asked.requestId, trace: asked.trace };
    // matchCallRoute finds a service's route only when this gateway has services.
    return inCallSlot(calls, tenant, () => callService(deps.services!.router, req, call, { maxBodyBytes: deps.maxBodyBytes, hideAuthorization: deps.auth.required }));
  }
  return whileBrokerUp(deps.link, () => inCallSlot(calls, tenant, () => callFunction(deps, req, asked, target, tenant, route)));
}

async function callFunction(deps: CallHandlerDeps, req: IncomingMessage, asked: Asked, target: RequestTarget, tenant: string, route: CallRoute): Promise<InvokeResult> {
  const path = route.path ?? invokePath(target);
  const fn = await deps.registry.get(tenant, route.name);
  const call: InvokeRequest = {
    requestId: asked.requestId,
    tenant: fn.tenant,
    name: fn.name,
    digest: fn.digest,
    method: asked.method,
    path,
    query: target.query,
    headers: rawHeaderList(req, deps.auth.required),
    body: await readIncomingBody(req, deps.maxBodyBytes),
  };
  return deps.invoker.invoke(fn, call, asked.trace);
}
