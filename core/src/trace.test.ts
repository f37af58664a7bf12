import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { childSpan, formatTraceparent, parseTraceparent, traceHeaders, traceOf } from './trace.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('parse - a valid header gives its trace id, parent id and flags', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: '01' });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.flags).toBe('00');
  });

  it('parse - a later version may carry more fields; its first four are read', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-next`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: '01' });
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['too short', '00-XYZ'],
    ['upper case', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with a fifth field', `00-${TRACE}-${SPAN}-01-extra`],
    ['trace id one short', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['oversized', `01-${TRACE}-${SPAN}-01-${'a'.repeat(600)}`],
  ])('parse - %s is ignored', (_why, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('child span - keeps the trace and its flags, with a new span id; without a parent, a new trace', () => {
    const parent = parseTraceparent(`00-${TRACE}-${SPAN}-00`);
    const child = childSpan(parent);
    expect(child.traceId).toBe(TRACE);
    expect(child.flags).toBe('00');
    expect(child.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(child.spanId).not.toBe(SPAN);
    const fresh = childSpan(undefined);
    expect(parseTraceparent(formatTraceparent(fresh))).toEqual(fresh);
    expect(fresh.traceId).not.toBe(childSpan(undefined).traceId);
  });

  it('NATS headers - a trace goes out as traceparent and is read back checked; none sends no headers', () => {
    const t = childSpan(undefined);
    expect(traceOf({ headers: traceHeaders(t) })).toEqual(t);
    expect(traceHeaders(undefined)).toBeUndefined();
    expect(traceOf({ headers: undefined })).toBeUndefined();
    const forged = headers();
    forged.set('traceparent', 'not-a-trace');
    expect(traceOf({ headers: forged })).toBeUndefined();
  });
});
