import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { traceContext, type TraceVariables } from './trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

/** The middleware in front of a route that answers the trace it was given. */
function app() {
  const a = new Hono<{ Variables: TraceVariables & { requestId: string } }>();
  a.onError((_err, c) => c.text('failed', 500));
  a.use('*', async (c, next) => {
    c.set('requestId', 'req_1');
    await next();
  });
  a.use('*', traceContext(createLogger('test', {}, 'silent')));
  a.get('/', (c) => c.json(c.var.trace));
  a.get('/fails', () => {
    throw new Error('boom');
  });
  return a;
}

describe('trace context', () => {
  it('traceparent - the caller\'s trace is continued under a new span, which the answer carries', async () => {
    const res = await app().request('/', { headers: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` } });
    const trace = (await res.json()) as { traceId: string; spanId: string };
    expect(trace.traceId).toBe(TRACE);
    expect(trace.spanId).not.toBe('00f067aa0ba902b7');
    expect(res.headers.get('traceparent')).toBe(`00-${TRACE}-${trace.spanId}-01`);
  });

  it('traceparent - none, or a malformed one, starts a new trace', async () => {
    for (const headers of [{}, { traceparent: '00-nope' }] as Record<string, string>[]) {
      const res = await app().request('/', { headers });
      const trace = (await res.json()) as { traceId: string };
      expect(trace.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${trace.traceId}-[0-9a-f]{16}-01$`));
    }
  });

  it('traceparent - an error answer carries it too', async () => {
    const res = await app().request('/fails', { headers: { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` } });
    expect(res.status).toBe(500);
    expect(res.headers.get('traceparent')).toMatch(new RegExp(`^00-${TRACE}-`));
  });
});
