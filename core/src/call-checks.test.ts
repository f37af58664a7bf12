import { describe, expect, it } from 'vitest';
import { CallChecks } from './call-checks.js';
import { decode, encode } from './codec.js';
import { decodeChecked, whyMalformed } from './checked-decode.js';
import type { InvokeReply, InvokeRequest } from './protocol.js';
import { MessageSchemas } from './schemas.js';

const request: InvokeRequest = {
  requestId: 'req_1', tenant: 'acme', name: 'echo', digest: 'ab'.repeat(32), method: 'POST', path: '/x', query: 'a=1',
  headers: [['content-type', 'text/plain'], ['x-a', '']], body: new Uint8Array([1, 2, 3]), limits: { timeoutMs: 500, outputBytes: 4096 },
};
const reply: InvokeReply = { ok: true, status: 200, headers: [['content-type', 'text/plain']], body: new Uint8Array([4]), hostId: 'host-1', durationMs: 0.25 };

/** mulberry32: the same pairs every run, so a failure can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values of every shape a field might be sent as. */
const ODD: unknown[] = [
  undefined, null, true, 0, -1, 1.5, 1, 1023, 1024, 3_600_000, 3_600_001, 64 * 1024 * 1024 + 1, NaN, Infinity, -Infinity, 2 ** 53,
  '', 'x', [], [[]], [['a']], [['a', 'b']], [['a', 'b', 'c']], [['a', 1]], [[1, 'b']], [['a', 'b'], 'c'], [null],
  {}, { timeoutMs: 5 }, { outputBytes: 2048 }, { timeoutMs: 0 }, { outputBytes: 10 }, { timeoutMs: 5, other: 1 }, { timeoutMs: 1.5 },
  new Uint8Array(0), Buffer.from('body'), new Uint16Array(2),
];

/** The message with one field set to `value` (or removed, for `undefined`), or a key added. */
function mutate(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out = { ...base };
  if (value === undefined) delete out[key];
  else out[key] = value;
  return out;
}

/** Every single-field change of `base`, through the codec as on the wire, with a few made of two changes. */
function variants(base: Record<string, unknown>): Record<string, unknown>[] {
  const keys = [...Object.keys(base), 'extra', 'ok'];
  const one = keys.flatMap((k) => ODD.map((v) => mutate(base, k, v)));
  const random = seededRandom(15);
  const two = Array.from({ length: 2000 }, () => {
    const pick = () => [keys[Math.floor(random() * keys.length)]!, ODD[Math.floor(random() * ODD.length)]] as const;
    const [k1, v1] = pick();
    const [k2, v2] = pick();
    return mutate(mutate(base, k1, v1), k2, v2);
  });
  return [base, ...one, ...two].map((m) => decode(encode(m), 1 << 20) as Record<string, unknown>);
}

describe('call checks', () => {
  for (const [kind, base] of [['InvokeRequest', request], ['InvokeReply', reply]] as const) {
    it(`${kind} - accepts only what its schema accepts, and gives back what the schema's parse gives`, () => {
      let accepted = 0;
      for (const v of variants(base as unknown as Record<string, unknown>)) {
        const quick = CallChecks[kind](v);
        const schema = MessageSchemas[kind].safeParse(v);
        if (quick === undefined) continue;
        accepted++;
        expect(schema.success, JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `<${x.length} bytes>` : x))).toBe(true);
        expect(quick).toEqual(schema.data);
      }
      // The check is the call path's: the valid message and its harmless variants take it.
      expect(accepted).toBeGreaterThan(10);
    });
  }

  it('a message the hand check leaves - decided by the schema, with its reason', () => {
    const bad = { ...request, limits: { timeoutMs: 0 } };
    expect(CallChecks.InvokeRequest(decode(encode(bad), 1 << 20))).toBeUndefined();
    expect(decodeChecked('InvokeRequest', encode(bad))).toBeUndefined();
    expect(whyMalformed('InvokeRequest', encode(bad))).toMatch(/^limits\.timeoutMs: /);
    // Valid but not the hand check's (a refusal): the schema accepts it.
    const refused: InvokeReply = { ok: false, error: { code: 'not_found', message: 'gone' }, hostId: 'host-1' };
    expect(CallChecks.InvokeReply(decode(encode(refused), 1 << 20))).toBeUndefined();
    expect(decodeChecked('InvokeReply', encode(refused))).toEqual(refused);
  });

  it('unknown keys - left out of what is given back, as the schema leaves them', () => {
    const back = decodeChecked('InvokeRequest', encode({ ...request, extra: 'x' }));
    expect(back).toEqual({ ...request, body: expect.any(Uint8Array) });
    expect(back).not.toHaveProperty('extra');
  });
});
