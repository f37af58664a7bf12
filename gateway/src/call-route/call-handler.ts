/**
 * Serves the function call routes (call-routes.ts) on Node's HTTP server, in
 * front of the Hono app: a request for one of them is answered here, anything
 * else is left to the app (`false`). The framework's request and response
 * objects and its middleware chain cost a call about 120 µs of CPU and 15 KiB
 * (docs/benchmarks.md, "The gateway's own work per call"); the checks are the
 * ones the app's middleware makes, as the same functions, in the same order:
 *
 *   request id, trace -> API key -> request rate -> broker up (and watched)
 *   -> concurrent calls -> the invoke's query -> function -> body -> call
 *
 * and every refusal has the app's error shape (call-answer.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlurryError, TRACEPARENT, type BrokerLink, type InvokeRequest, type Logger } from '@flurry/core';
import type { KeyRing } from '../auth/key-ring.js';
import { whileBrokerUp } from '../broker-watch.js';
import type { FunctionRegistry } from '../function-registry.js';
import { asFlurryError } from '../http-errors.js';
import type { InvokeResult, Invoker } from '../invoker.js';
import { logRequest, traceFrom } from '../metrics/trace-context.js';
import type { ConcurrentCalls } from '../quotas/concurrent-calls.js';
import { takeCallSlot, takeRequest } from '../quotas/limit-middleware.js';
import type { RequestRate } from '../quotas/request-rate.js';
import { drainUnread, readIncomingBody } from '../request-body.js';
import { requestIdFrom } from '../request-id.js';
import { rawHeader, rawHeaderList } from '../request-headers.js';
import { writeErrorAnswer, writeGuestAnswer, type Asked } from './call-answer.js';
import { invokePath, matchCallRoute, type CallRoute } from './call-routes.js';
import { requestTarget, type RequestTarget } from './request-target.js';

export interface CallHandlerDeps {
  link: BrokerLink;
  registry: Pick<FunctionRegistry, 'get'>;
  invoker: Pick<Invoker, 'invoke'>;
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
    const route = matchCallRoute(method, target.path);
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

/** The checks, then the call. */
async function answer(deps: CallHandlerDeps, req: IncomingMessage, asked: Asked, target: RequestTarget, route: CallRoute): Promise<InvokeResult> {
  const { tenant } = deps.auth.identify(rawHeader(req, 'authorization'));
  if (deps.limits) takeRequest(deps.limits.rate, tenant);
  return whileBrokerUp(deps.link, async () => {
    const calls = deps.limits?.calls;
    if (calls) takeCallSlot(calls, tenant);
    try {
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
      return await deps.invoker.invoke(fn, call, asked.trace);
    } finally {
      if (calls) calls.release(tenant);
    }
  });
}
