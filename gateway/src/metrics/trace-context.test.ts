import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { traceContext, type TraceVariables } from './trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

/** What `/answer` answers: a guest's binary answer, as the call routes make it. */
const answer = new Response(new Uint8Array([1, 2, 3]), { status: 201, headers: { 'content-type': 'application/octet-stream' } });

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
  a.get('/answer', () => answer);
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

  it('traceparent - set on the answer itself: a guest\'s answer is not rebuilt (its body stays bytes, not a stream read back)', async () => {
    const res = await app().request('/answer');
    expect(res).toBe(answer);
    expect(res.status).toBe(201);
    expect(res.headers.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([1, 2, 3]);
  });
});
