/** A client of a `room` service that talks without pause, every outcome kept in a RoomLedger (docs/reliability.md). */
import { expect } from 'vitest';
import { RoomLedger, type RoomMessage } from '../../infra/src/room-ledger.js';
import { json, type Api } from './gateway-api.js';

export interface Talk {
  ledger: RoomLedger;
  /** Acknowledged requests so far; throws at once what ended the loop, if it failed (a wait on it ends by the failure). */
  acknowledged(): number;
  /** Ends the loop; resolves with how many answers each status got. */
  stop(): Promise<Map<number, number>>;
  /** The first refusals' texts and bodies, to say why in a failure's message. */
  refusals: string[];
}

/**
 * Sends `/say` requests (texts `<prefix>-<k>`) one after another until stopped.
 * A 200 acknowledges its text; the only other answer allowed is a clean
 * refusal (503 with Retry-After), which leaves the text's fate unknown.
 */
export function talk(url: () => string, service: string, prefix: string, ledger = new RoomLedger()): Talk {
  let running = true;
  let failure: unknown;
  const statuses = new Map<number, number>();
  const refusals: string[] = [];
  const loop = (async () => {
    for (let k = 0; running; k++) {
      const text = `${prefix}-${k}`;
      const res = await fetch(`${url()}/svc/${service}/say`, {
        method: 'POST', body: JSON.stringify({ name: 'ada', text }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000),
      }).catch((err: unknown) => err as Error);
      if (res instanceof Error) throw new Error(`/say ${text} got no answer: ${res.message}`);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const body = (await res.json()) as { seq?: number };
      if (res.status === 200) ledger.acknowledge(text, body.seq!);
      else {
        expect(res.status, `/say ${text}: ${JSON.stringify(body)}`).toBe(503);
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        ledger.uncertain(text);
        if (refusals.length < 5) refusals.push(`${text} at ${new Date().toISOString()}: ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  loop.catch((err: unknown) => (failure = err));
  const acknowledged = () => {
    if (failure !== undefined) throw failure;
    return ledger.acknowledged;
  };
  return { ledger, acknowledged, refusals, stop: async () => ((running = false), await loop, statuses) };
}

/** Every message the room holds, page by page. */
export async function roomMessages(api: Api, service: string): Promise<RoomMessage[]> {
  const all: RoomMessage[] = [];
  for (let since = 0; ; ) {
    const page = await json<{ messages: RoomMessage[]; next: number }>(await api('GET', `/svc/${service}/messages?since=${since}`));
    all.push(...page.messages);
    if (page.messages.length === 0 || page.next === since) return all;
    since = page.next;
  }
}

/** Hosts that list the instance in their records (GET /v1/hosts). */
export async function holders(api: Api, instanceId: string): Promise<string[]> {
  const { hosts } = await json<{ hosts: { id: string; instances?: { instanceId: string }[] }[] }>(await api('GET', '/v1/hosts'));
  return hosts.filter((h) => h.instances?.some((i) => i.instanceId === instanceId)).map((h) => h.id);
}
