// The fleet end to end: a real nats-server, the gateway and two worker host
// processes; functions deployed and called over HTTP; every error answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram, missingCGuests } from './helpers/functions.js';
import { slowModule, wat } from './helpers/wat.js';

let fleet: LocalFleet;
const withoutWordfreq = missingCGuests('wordfreq');

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 2,
    hostEnv: { FLURRY_CALL_TIMEOUT_MS: '1500', FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '2' },
    // 100 calls at once below: above the default of 64 calls in flight per tenant (test/quotas.test.ts tries that limit).
    gatewayEnv: { FLURRY_MAX_BODY: '64KiB', FLURRY_HOST_TTL_S: '2', FLURRY_QUOTA_CONCURRENT_CALLS: '128' },
  });
  for (const name of ['echo', 'trap', 'spin', 'status', 'counter', 'big-output', 'grow', 'json-transform', ...(withoutWordfreq ? [] : ['wordfreq'])]) {
    const res = await deploy(fleet.url, name, guestProgram(name));
    expect(res.status, `${name}: ${await res.clone().text()}`).toBe(201);
  }
});

afterAll(async () => {
  await fleet?.stop();
});

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  expect(res.headers.get('content-type')).toContain('application/json');
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(res.headers.get('x-flurry-error')).toBe(body.error.code);
  return body.error;
}

describe('fleet - deploy', () => {
  it('deploy - lists, gets, redeploys and deletes a function', async () => {
    const bytes = guestProgram('echo');
    expect((await deploy(fleet.url, 'echo-copy', bytes)).status).toBe(201);
    expect((await deploy(fleet.url, 'echo-copy', bytes)).status).toBe(200);
    const list = (await (await fetch(`${fleet.url}/v1/functions`)).json()) as { functions: { name: string }[] };
    expect(list.functions.map((f) => f.name)).toContain('echo-copy');
    const one = (await (await fetch(`${fleet.url}/v1/functions/echo-copy`)).json()) as { function: { digest: string; exports: string[]; memory: { maximumPages: number } } };
    expect(one.function.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(one.function.exports).toContain('handle');
    expect(one.function.memory.maximumPages).toBeGreaterThan(0);
    expect((await fetch(`${fleet.url}/v1/functions/echo-copy`, { method: 'DELETE' })).status).toBe(200);
    const gone = await fetch(`${fleet.url}/fn/echo-copy/`);
    expect(gone.status).toBe(404);
    expect((await errorOf(gone)).code).toBe('not_found');
  });

  it('deploy - each invalid module answers 400 saying why', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [new TextEncoder().encode('#!/bin/sh\necho not wasm\n'), /not a WebAssembly module/],
      [wat('(module (memory 1 2) (func (export "handle")))'), /does not export its memory/],
      [wat('(module (memory (export "memory") 1) (func (export "handle")))'), /declares no maximum/],
      [wat('(module (memory (export "memory") 1 65536) (func (export "handle")))'), /exceeds the cap/],
      [wat('(module (memory (export "memory") 1 2) (func (export "main")))'), /none of the entry points/],
    ];
    for (const [bytes, message] of cases) {
      const res = await deploy(fleet.url, 'bad', bytes);
      expect(res.status).toBe(400);
      const err = await errorOf(res);
      expect(err.code).toBe('invalid_module');
      expect(err.message).toMatch(message);
    }
    expect((await fetch(`${fleet.url}/v1/functions/bad`)).status).toBe(404);
  });

  it('deploy - a bad name answers 400', async () => {
    const res = await deploy(fleet.url, 'Bad_Name', guestProgram('echo'));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('bad_request');
  });
});

describe('fleet - invoke', () => {
  it('echo - 100 concurrent calls each get their own request reflected', async () => {
    const calls = Array.from({ length: 100 }, async (_, i) => {
      const res = await fetch(`${fleet.url}/fn/echo/item/${i}?n=${i}&tag=x`, {
        method: 'POST',
        body: `payload ${i}`,
        headers: { 'x-call': String(i), 'content-type': 'text/plain' },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-flurry-host')).toMatch(/^host-/);
      const body = (await res.json()) as { method: string; path: string; query: string; headers: Record<string, string>; body: string };
      expect(body.method).toBe('POST');
      expect(body.path).toBe(`/item/${i}`);
      expect(body.query).toBe(`n=${i}&tag=x`);
      expect(body.headers['x-call']).toBe(String(i));
      expect(body.body).toBe(`payload ${i}`);
      return res.headers.get('x-flurry-host');
    });
    const hosts = await Promise.all(calls);
    expect(hosts.every((h) => h)).toBe(true);
  });

  it('invoke endpoint - passes a JSON body through', async () => {
    const res = await fetch(`${fleet.url}/v1/functions/echo/invoke`, { method: 'POST', body: JSON.stringify({ a: [1, 2] }), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { method: string; path: string; body: string };
    expect(body.method).toBe('POST');
    expect(body.path).toBe('/');
    expect(JSON.parse(body.body)).toEqual({ a: [1, 2] });
  });

  it('fresh instance - no state leaks from one call to the next', async () => {
    const values = [];
    for (let i = 0; i < 5; i++) values.push(await (await fetch(`${fleet.url}/fn/counter`)).text());
    expect(new Set(values).size).toBe(1);
  });

  it.skipIf(withoutWordfreq !== undefined)('C program - wordfreq built by clang for wasm32-wasi runs through the WASI shim', async () => {
    const res = await fetch(`${fleet.url}/fn/wordfreq?n=2`, { method: 'POST', body: 'the cat and the hat and the bat' });
    expect(res.status).toBe(200);
    const text = await res.text();
    const top = JSON.parse(text) as unknown;
    expect(JSON.stringify(top)).toMatch(/"the"/);
    expect(JSON.stringify(top)).toMatch(/3/);
  });

  it('json-transform - real work on a JSON body', async () => {
    const doc = [{ name: 'b', v: 2 }, { name: 'a', v: 5 }, { name: 'c', v: -1 }];
    const res = await fetch(`${fleet.url}/fn/json-transform?op=sort&key=v`, { method: 'POST', body: JSON.stringify(doc) });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('"c"');
  });
});

describe('fleet - errors', () => {
  it('unknown function - 404', async () => {
    const res = await fetch(`${fleet.url}/fn/nope/x`);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).message).toMatch(/not deployed/);
  });

  it('body over the cap - 413', async () => {
    const res = await fetch(`${fleet.url}/fn/echo`, { method: 'POST', body: new Uint8Array(65 * 1024) });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
  });

  it('guest trap - 502 with the trap message', async () => {
    const res = await fetch(`${fleet.url}/fn/trap`);
    expect(res.status).toBe(502);
    const err = await errorOf(res);
    expect(err.code).toBe('guest_trap');
    expect(err.message.length).toBeGreaterThan(0);
  });

  it('guest status - non-zero status is 502 guest_error', async () => {
    const res = await fetch(`${fleet.url}/fn/status`);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).message).toMatch(/guest returned status/);
  });

  it('output over the cap - 502 output_limit', async () => {
    const res = await fetch(`${fleet.url}/fn/big-output`);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe('output_limit');
  });

  it('unbounded memory growth - stops at the declared maximum with a trap', async () => {
    const res = await fetch(`${fleet.url}/fn/grow`);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe('guest_trap');
  });

  it('infinite loop - 504, and the host keeps answering', async () => {
    const res = await fetch(`${fleet.url}/fn/spin`);
    expect(res.status).toBe(504);
    expect((await errorOf(res)).code).toBe('timeout');
    const after = await Promise.all(Array.from({ length: 8 }, () => fetch(`${fleet.url}/fn/echo/after`)));
    expect(after.map((r) => r.status)).toEqual(Array(8).fill(200));
  });
});

describe('fleet - hosts', () => {
  it('hosts - both hosts registered with their capacity', async () => {
    const { hosts } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; guestSlots: number; pager: string; draining: boolean }[] };
    expect(hosts.map((h) => h.id).sort()).toEqual(['host-1', 'host-2']);
    for (const h of hosts) {
      expect(h.guestSlots).toBe(2);
      expect(['userfaultfd', 'portable']).toContain(h.pager);
      expect(h.draining).toBe(false);
    }
  });

  it('drain - SIGTERM finishes calls in flight, deregisters, exits 0; then no host means 503', async () => {
    expect((await deploy(fleet.url, 'slow', slowModule(400))).status).toBe(201);
    const first = await fetch(`${fleet.url}/fn/slow`);
    expect(first.status).toBe(200);
    const holder = fleet.hosts.find((h) => h.ready.hostId === first.headers.get('x-flurry-host'))!;
    const inFlight = Array.from({ length: 2 }, () => fetch(`${fleet.url}/fn/slow`).then(async (r) => [r.status, await r.text()]));
    await new Promise((r) => setTimeout(r, 100));
    const exit = holder.stop();
    expect(await Promise.all(inFlight)).toEqual([[200, 'done'], [200, 'done']]);
    expect(await exit).toBe(0);
    await fleet.waitForHosts(1);
    // The other host takes the function over.
    const moved = await fetch(`${fleet.url}/fn/slow`);
    expect(moved.status).toBe(200);
    expect(moved.headers.get('x-flurry-host')).not.toBe(holder.ready.hostId);
    await Promise.all(fleet.hosts.map((h) => h.stop()));
    await fleet.waitForHosts(0);
    const none = await fetch(`${fleet.url}/fn/echo/x`);
    expect(none.status).toBe(503);
    expect(none.headers.get('retry-after')).toBe('1');
    expect((await errorOf(none)).code).toBe('no_capacity');
  });
});
