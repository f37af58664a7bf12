/**
 * The gateway's end of W3C trace context (core/src/trace.ts): each request
 * gets a span, under the caller's `traceparent` when it sent a valid one (a
 * malformed one is ignored: a new trace starts), and the response carries
 * the span back in `traceparent`. Routes hand `c.get('trace')` on to the NATS
 * requests they make, so the host's log lines for the call name the trace.
 *
 *   app.use('*', traceContext(log));
 *   await invoker.invoke(fn, req, c.get('trace'));
 *
 * The call routes (call-route/) use `traceFrom` and `logRequest` without the middleware.
 */
import type { MiddlewareHandler } from 'hono';
import { header } from '../request-headers.js';
import { childSpan, formatTraceparent, parseTraceparent, TRACEPARENT, type Logger, type TraceContext } from '@flurry/core';

export type TraceVariables = { trace: TraceContext };

/** The request's span: a child of the caller's `traceparent` when valid, else the root of a new trace. */
export function traceFrom(traceparent: string | undefined): TraceContext {
  return childSpan(parseTraceparent(traceparent));
}

/** Each request at debug level, with its trace id. */
export function logRequest(log: Logger, requestId: string, trace: TraceContext, method: string, path: string, status: number): void {
  if (log.isLevelEnabled('debug')) log.debug({ requestId, traceId: trace.traceId, method, path, status }, 'request');
}

/** Sets the request's `trace` variable, answers with `traceparent`, and logs each request with its trace id at debug level. */
export function traceContext(log: Logger): MiddlewareHandler<{ Variables: TraceVariables & { requestId: string } }> {
  return async (c, next) => {
    const trace = traceFrom(header(c, TRACEPARENT));
    c.set('trace', trace);
    await next();
    // On the response's own headers: c.header() after the handler rebuilds the response as a Web stream.
    c.res.headers.set(TRACEPARENT, formatTraceparent(trace));
    logRequest(log, c.get('requestId'), trace, c.req.method, c.req.path, c.res.status);
  };
}
