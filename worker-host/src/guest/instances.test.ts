/** Persistent (service) instances: clones of a warm parent that keep their memory between requests (functions/room). */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { nativePagerStatus } from '../native/pager.js';
import { GuestPool, type CallResult, type HttpRequestData, type PagerMode } from './guest-pool.js';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const PROGRAMS = ['room', 'spin'];
const missing = PROGRAMS.filter((name) => !existsSync(new URL(`${name}.wasm`, BUILD)));
if (missing.length > 0) console.warn(`instances.test.ts skipped: functions/build lacks ${missing.join(', ')} (build them with "node functions/build.mjs")`);

const program = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.wasm`, BUILD)));
const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: CallResult) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, any>;
const MiB = 1024 * 1024;

const status = nativePagerStatus();
if (!status.copyOnWrite) console.warn(`[instances] skipping the native pager: ${status.reason}`);
const PAGERS: PagerMode[] = status.copyOnWrite ? ['native', 'portable'] : ['portable'];

function req(method: string, path: string, body?: unknown, query = ''): HttpRequestData {
  return { method, path, query, headers: [], body: body === undefined ? new Uint8Array(0) : bytes(JSON.stringify(body)) };
}

describe.skipIf(missing.length > 0).each(PAGERS)('persistent instances (%s pager)', (pager) => {
  let pool: GuestPool;
  let n = 0;
  const call = (id: string, method: string, path: string, body?: unknown, query = '') => pool.instanceHandle(id, req(method, path, body, query), `i${n++}`);

  beforeAll(async () => {
    const limits = { callTimeoutMs: 1500, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent'), pager });
    expect(pool.pager).toBe(pager);
    await Promise.all([pool.warm('room', program('room'), bytes('{"ballastMiB": 2}')), pool.warm('spin', program('spin'))]);
  });
  afterAll(() => pool?.close());

  it('state - join, say and messages persist across requests on one instance', async () => {
    const id = await pool.createInstance('room');
    expect(json(await call(id, 'POST', '/join', { name: 'ada' }))).toEqual({ member: 'ada', members: ['ada'] });
    expect(json(await call(id, 'POST', '/join', { name: 'bob' }))).toEqual({ member: 'bob', members: ['ada', 'bob'] });
    expect(json(await call(id, 'POST', '/say', { name: 'ada', text: 'hi' }))).toEqual({ seq: 1 });
    expect(json(await call(id, 'POST', '/say', { name: 'bob', text: 'hello' }))).toEqual({ seq: 2 });
    expect(json(await call(id, 'GET', '/messages', undefined, 'since=1'))).toEqual({ messages: [{ seq: 2, name: 'bob', text: 'hello' }], next: 2 });
    expect(json(await call(id, 'POST', '/leave', { name: 'ada' }))).toEqual({ left: 'ada', members: ['bob'] });
    const state = json(await call(id, 'GET', '/state'));
    expect(state).toMatchObject({ members: ['bob'], count: 2, seq: 2, ballastBytes: 2 * MiB });
    expect(state.digest).toMatch(/^[0-9a-f]{16}$/);
    // The digest is a function of the state: asking again changes nothing.
    expect(json(await call(id, 'GET', '/state')).digest).toBe(state.digest);
    expect(pool.instances().find((i) => i.instanceId === id)).toMatchObject({ key: 'room', requests: 8 });
    pool.destroyInstance(id);
  });

  it('bad input - a 400 JSON error, and the state is untouched', async () => {
    const id = await pool.createInstance('room');
    const before = json(await call(id, 'GET', '/state')).digest;
    const bad = await pool.instanceHandle(id, { ...req('POST', '/join'), body: bytes('{nope') }, 'bad1');
    expect(bad.status).toBe(400);
    expect(json(bad).error).toMatch(/invalid JSON/);
    expect((await call(id, 'POST', '/say', { name: 'nobody', text: 'x' })).status).toBe(400);
    expect((await call(id, 'POST', '/join', { name: 5 })).status).toBe(400);
    expect((await call(id, 'GET', '/messages', undefined, 'since=x')).status).toBe(400);
    expect(json(await call(id, 'GET', '/state')).digest).toBe(before);
    pool.destroyInstance(id);
  });

  it('independence - two instances of one parent do not share state, and the warm parent is unaffected', async () => {
    const [a, b] = await Promise.all([pool.createInstance('room'), pool.createInstance('room')]);
    const initial = json(await call(b, 'GET', '/state'));
    await call(a, 'POST', '/join', { name: 'ada' });
    await call(a, 'POST', '/say', { name: 'ada', text: 'only in a' });
    await call(a, 'POST', '/churn', { bytes: 100_000 });
    const stateA = json(await call(a, 'GET', '/state'));
    expect(stateA).toMatchObject({ members: ['ada'], seq: 1, churned: 100_000 });
    expect(stateA.digest).not.toBe(initial.digest);
    expect(json(await call(b, 'GET', '/state'))).toEqual(initial);
    expect(initial).toMatchObject({ members: [], count: 0, seq: 0, churned: 0 });
    // A plain function call is a fresh clone of the parent: the initial state.
    expect(json(await pool.handle('room', req('GET', '/state'), 'fresh'))).toEqual(initial);
    expect(json(await pool.handle('room', req('POST', '/say', { name: 'ada', text: 'x' }), 'fresh2')).error).toMatch(/not a member/);
    pool.destroyInstance(a);
    pool.destroyInstance(b);
  });

  it('serialization - 100 concurrent requests to one instance are all answered, seq 1..100 with no gaps', async () => {
    const id = await pool.createInstance('room');
    await call(id, 'POST', '/join', { name: 'ada' });
    // Other work on the pool meanwhile, on the call threads beside the instance's.
    const others = Array.from({ length: 20 }, (_, i) => pool.handle('room', req('GET', '/state'), `other${i}`));
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => call(id, 'POST', '/say', { name: 'ada', text: `m${i}` })));
    const seqs = answers.map((a) => json(a).seq as number);
    // Arrival order: request i got seq i + 1.
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const other of await Promise.all(others)) expect(json(other).seq).toBe(0);
    const all = json(await call(id, 'GET', '/messages', undefined, 'since=0'));
    expect(all.next).toBe(100);
    expect(all.messages.map((m: { seq: number; text: string }) => `${m.seq}:${m.text}`)).toEqual(Array.from({ length: 100 }, (_, i) => `${i + 1}:m${i}`));
    pool.destroyInstance(id);
  });

  it('trap - a trap fails its request with guest_trap and leaves the instance usable', async () => {
    const id = await pool.createInstance('room');
    await call(id, 'POST', '/join', { name: 'ada' });
    await call(id, 'POST', '/say', { name: 'ada', text: 'before' });
    const before = json(await call(id, 'GET', '/state'));
    await expect(call(id, 'POST', '/trap')).rejects.toMatchObject({ code: 'guest_trap', message: 'unreachable' });
    expect(json(await call(id, 'GET', '/state'))).toEqual(before);
    expect(json(await call(id, 'POST', '/say', { name: 'ada', text: 'after' }))).toEqual({ seq: 2 });
    pool.destroyInstance(id);
  });

  it('trap - a thousand traps leave the instance usable (its shadow-stack pointer is rewound after each)', async () => {
    const id = await pool.createInstance('room');
    await call(id, 'POST', '/join', { name: 'ada' });
    const traps = await Promise.allSettled(Array.from({ length: 1000 }, () => call(id, 'POST', '/trap')));
    expect(traps.every((t) => t.status === 'rejected' && (t.reason as { code: string }).code === 'guest_trap')).toBe(true);
    expect(json(await call(id, 'POST', '/say', { name: 'ada', text: 'still here' }))).toEqual({ seq: 1 });
    expect(json(await call(id, 'GET', '/messages'))).toEqual({ messages: [{ seq: 1, name: 'ada', text: 'still here' }], next: 1 });
    pool.destroyInstance(id);
  });

  it('destroy - frees the instance: later requests fail with not_found', async () => {
    const id = await pool.createInstance('room');
    await call(id, 'POST', '/join', { name: 'ada' });
    pool.destroyInstance(id);
    expect(pool.instances().some((i) => i.instanceId === id)).toBe(false);
    await expect(call(id, 'GET', '/state')).rejects.toMatchObject({ code: 'not_found' });
    await expect(pool.createInstance('nothing-here')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('timeout - a request that times out destroys the instances on its thread, naming the instance', async () => {
    const id = await pool.createInstance('spin');
    await expect(pool.instanceHandle(id, req('POST', '/'), 'spin1')).rejects.toMatchObject({ code: 'timeout', message: expect.stringContaining(`instance ${id}`) });
    expect(pool.instances().some((i) => i.instanceId === id)).toBe(false);
    await expect(pool.instanceHandle(id, req('POST', '/'), 'spin2')).rejects.toMatchObject({ code: 'not_found' });
    // The pool goes on: a new instance works.
    const room = await pool.createInstance('room');
    expect(json(await call(room, 'GET', '/state')).seq).toBe(0);
    pool.destroyInstance(room);
  });
});
