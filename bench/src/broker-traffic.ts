/**
 * What crossed the broker while a job ran: nats-server's own counters from
 * its monitoring endpoint (/varz), read before and after. `in` is what
 * clients published to it, `out` what it delivered to subscribers (a message
 * stored in a stream and heard by a subscriber counts once in and once out;
 * JetStream's acknowledgements and API replies count as messages too).
 */

/** nats-server's totals at one moment. */
export interface BrokerReading { inMsgs: number; outMsgs: number; inBytes: number; outBytes: number }

/** The difference of two readings. */
export type BrokerTraffic = BrokerReading;

const FIELDS = { inMsgs: 'in_msgs', outMsgs: 'out_msgs', inBytes: 'in_bytes', outBytes: 'out_bytes' } as const;

/** Reads /varz at `monitorUrl` (`http://host:port`); throws when a counter is missing or not a number. */
export async function readBroker(monitorUrl: string): Promise<BrokerReading> {
  const res = await fetch(`${monitorUrl}/varz`);
  if (!res.ok) throw new Error(`nats-server's /varz answered ${res.status}`);
  const v = (await res.json()) as Record<string, unknown>;
  const out = {} as BrokerReading;
  for (const [k, field] of Object.entries(FIELDS) as [keyof BrokerReading, string][]) {
    const n = v[field];
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new Error(`nats-server's /varz has no number ${field}`);
    out[k] = n;
  }
  return out;
}

export function brokerBetween(a: BrokerReading, b: BrokerReading): BrokerTraffic {
  return { inMsgs: b.inMsgs - a.inMsgs, outMsgs: b.outMsgs - a.outMsgs, inBytes: b.inBytes - a.inBytes, outBytes: b.outBytes - a.outBytes };
}
