/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent`
 * a caller sends the gateway, carried in the NATS headers of the invoke,
 * fork and service requests to the host, whose log lines for the call name
 * its trace id. Nothing is exported to a tracing backend: the id ties the
 * gateway's and the host's lines of one call together (docs/observability.md).
 *
 *   traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>
 *
 * A header from outside is untrusted: one that is malformed (wrong length,
 * upper case, all-zero ids, version ff) is ignored and a new trace started.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/transport-node';
import { randomHex } from './ids.js';

export const TRACEPARENT = 'traceparent';

export interface TraceContext {
  traceId: string;
  /** This process's span: the parent-id of what it sends on. */
  spanId: string;
  /** Trace flags (bit 0: sampled), kept as they came. */
  flags: string;
}

const FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The caller's trace context, or undefined when `header` is absent or malformed. */
export function parseTraceparent(header: string | undefined | null): TraceContext | undefined {
  if (!header || header.length > 512) return undefined;
  const m = FORMAT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version 00 has exactly four fields; a later version may add fields after them, ff is invalid.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, spanId: spanId!, flags: flags! };
}

/** A span of this process under `parent` (same trace), or the first span of a new trace. */
export function childSpan(parent: TraceContext | undefined): TraceContext {
  const span = randomHex(8);
  return parent ? { traceId: parent.traceId, spanId: span, flags: parent.flags } : { traceId: randomHex(16), spanId: span, flags: '01' };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}

/** NATS headers carrying `t` to the process that answers (undefined without a trace: no headers at all). */
export function traceHeaders(t: TraceContext | undefined): MsgHdrs | undefined {
  if (!t) return undefined;
  const h = natsHeaders();
  h.set(TRACEPARENT, formatTraceparent(t));
  return h;
}

/** The trace a NATS request carries, checked as any header from a peer; undefined when absent or malformed. */
export function traceOf(msg: Pick<Msg, 'headers'>): TraceContext | undefined {
  return parseTraceparent(msg.headers?.get(TRACEPARENT));
}
