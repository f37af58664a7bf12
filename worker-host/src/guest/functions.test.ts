/** The real guest programs (AssemblyScript and clang wasm32-wasi, from functions/build) through the pool. */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { GuestPool, type HttpRequestData } from './guest-pool.js';
import { frameReduceInput } from '@flurry/core';

const BUILD = new URL('../../../functions/build/', import.meta.url);
const AS_PROGRAMS = ['echo', 'json-transform', 'counter', 'trap', 'spin', 'grow', 'big-output', 'status', 'pattern'];
const missing = AS_PROGRAMS.filter((name) => !existsSync(new URL(`${name}.wasm`, BUILD)));
if (missing.length > 0) console.warn(`functions.test.ts skipped: functions/build lacks ${missing.join(', ')} (build them with "node functions/build.mjs")`);
// The set-up skips the C guests on a machine without clang for wasm32-wasi (it says so); the rest runs.
const withoutC = !existsSync(new URL('wordfreq.wasm', BUILD));
if (withoutC) console.warn('functions.test.ts: the wordfreq test skipped: functions/build lacks wordfreq.wasm (the C guests need clang for wasm32-wasi; npm run setup says what is missing)');
const PROGRAMS = withoutC ? AS_PROGRAMS : [...AS_PROGRAMS, 'wordfreq'];

const program = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.wasm`, BUILD)));
const bytes = (s: string) => new TextEncoder().encode(s);
const json = (r: { body: Uint8Array }) => JSON.parse(new TextDecoder().decode(r.body)) as Record<string, unknown>;
const request = (over: Partial<HttpRequestData> = {}): HttpRequestData => ({ method: 'POST', path: '/', query: '', headers: [], body: new Uint8Array(0), ...over });
const MiB = 1024 * 1024;

describe.skipIf(missing.length > 0)('real guest programs', () => {
  let pool: GuestPool;

  beforeAll(async () => {
    // Init gets a generous limit (ten programs warm at once on a loaded machine); the endless-init test sets its own.
    const limits = { callTimeoutMs: 1500, initTimeoutMs: 30_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
    pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent') });
    const initInputs: Record<string, string> = { counter: '41', pattern: '{"mib": 4, "seed": 7}', wordfreq: 'the a' };
    await Promise.all(PROGRAMS.map((name) => pool.warm(name, program(name), bytes(initInputs[name] ?? ''))));
  });
  afterAll(() => pool?.close());

  it('echo - reflects method, path, query, lower-case headers and body as JSON', async () => {
    const result = await pool.handle('echo', request({ path: '/a/b', query: 'x=1', headers: [['Content-Type', 'text/plain'], ['X-Two', '1'], ['x-two', '2']], body: bytes('hello') }), 'f1');
    expect(json(result)).toEqual({ method: 'POST', path: '/a/b', query: 'x=1', headers: { 'content-type': 'text/plain', 'x-two': '1, 2' }, body: 'hello', bodyLength: 5 });
    expect(result.headers).toEqual([['content-type', 'application/json']]);
  });

  it('json-transform - sorts a document by a field', async () => {
    const result = await pool.handle('json-transform', request({ query: 'op=sort&key=a&order=desc', body: bytes('[{"a":1},{"a":3},{"a":2}]') }), 'f2');
    expect(JSON.parse(new TextDecoder().decode(result.body))).toEqual([{ a: 3 }, { a: 2 }, { a: 1 }]);
  });

  it('counter - every call and every clone sees the snapshot: start + 1, one call on the heap', async () => {
    const calls = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.handle('counter', request(), `f3-${i}`)));
    for (const call of calls) expect(json(call)).toEqual({ count: 42, calls: 1 });
    expect(json(await pool.run('counter', 5, 8, new Uint8Array(0), 'f4'))).toEqual({ index: 5, count: 42, calls: 1 });
  });

  it('trap - abort, unreachable, out-of-bounds and division by zero are guest_trap with their messages', async () => {
    const trap = (mode: string) => pool.handle('trap', request({ query: `mode=${mode}` }), `f5-${mode}`);
    await expect(trap('abort')).rejects.toMatchObject({ code: 'guest_trap', message: expect.stringMatching(/^abort: deliberate trap at trap\/index\.ts:\d+:\d+$/) });
    await expect(trap('unreachable')).rejects.toMatchObject({ code: 'guest_trap', message: 'unreachable' });
    await expect(trap('oob')).rejects.toMatchObject({ code: 'guest_trap', message: 'memory access out of bounds' });
    await expect(trap('divzero')).rejects.toMatchObject({ code: 'guest_trap', message: 'divide by zero' });
    await expect(pool.run('trap', 1, 2, new Uint8Array(0), 'f6')).rejects.toMatchObject({ code: 'guest_trap', message: expect.stringMatching(/^abort: deliberate trap in clone 1 at trap\/index\.ts:\d+:\d+$/) });
    expect(json(await pool.run('trap', 2, 4, new Uint8Array(0), 'f7'))).toEqual({ index: 2 });
  });

  it('spin - a call that never returns times out and the pool answers the next call', async () => {
    await expect(pool.handle('spin', request(), 'f8')).rejects.toMatchObject({ code: 'timeout', message: 'call exceeded 1500 ms' });
    expect(pool.size).toBe(2);
    expect(json(await pool.handle('counter', request(), 'f9'))).toEqual({ count: 42, calls: 1 });
  });

  it('spin - an init that never returns times out the warm', async () => {
    const strict = await GuestPool.start({ threads: 1, limits: { callTimeoutMs: 1500, initTimeoutMs: 1500, maxOutputBytes: MiB, maxLogLines: 64, maxLogBytes: 65536 }, log: createLogger('test', {}, 'silent') });
    try {
      await expect(strict.warm('spin-init', program('spin'), bytes('spin'))).rejects.toMatchObject({ code: 'timeout', message: 'init exceeded 1500 ms' });
      expect(strict.has('spin-init')).toBe(false);
    } finally {
      await strict.close();
    }
  });

  it('grow - growing memory to its declared maximum, then memory.grow fails with -1', async () => {
    const failed = { code: 'guest_trap', message: expect.stringMatching(/^abort: memory\.grow failed at 512 pages at grow\/index\.ts:\d+:\d+$/) };
    await expect(pool.handle('grow', request(), 'f10')).rejects.toMatchObject(failed);
    await expect(pool.handle('grow', request({ query: 'touch=1' }), 'f11')).rejects.toMatchObject(failed);
  });

  it('big-output - exactly the cap passes, past it is output_limit', async () => {
    const atCap = await pool.handle('big-output', request({ query: `bytes=${4 * MiB}` }), 'f12');
    expect(atCap.body.length).toBe(4 * MiB);
    expect(new TextDecoder().decode(atCap.body.subarray(0, 20))).toBe('0123456789abcdef0123');
    await expect(pool.handle('big-output', request(), 'f13')).rejects.toMatchObject({ code: 'output_limit' });
  });

  it('status - a non-zero return is guest_error; an HTTP status set by the guest comes back', async () => {
    await expect(pool.handle('status', request(), 'f14')).rejects.toMatchObject({ code: 'guest_error', message: 'guest returned status 7' });
    await expect(pool.run('status', 0, 1, bytes('3'), 'f15')).rejects.toMatchObject({ code: 'guest_error', message: 'guest returned status 3' });
    const teapot = await pool.handle('status', request({ query: 'http=418' }), 'f16');
    expect(teapot.status).toBe(418);
    expect(json(teapot)).toEqual({ status: 418 });
  });

  it('pattern - clones see the parent memory, write their own slices, differ in entropy; reduce checks them all', async () => {
    const progress: [number, number][] = [];
    const outputs = await Promise.all([0, 1, 2, 3].map((i) => pool.run('pattern', i, 4, new Uint8Array(0), `f17-${i}`, (done, total) => progress.push([done, total]))));
    for (const [i, output] of outputs.entries()) {
      expect(json(output)).toMatchObject({ index: i, count: 4, ok: true, mib: 4, seed: 7, mismatches: 0, restored: true, inits: 1 });
      expect(output.progress).toEqual({ done: 4, total: 4 });
    }
    expect(progress.length).toBeGreaterThanOrEqual(4);
    const reduced = await pool.reduce('pattern', 4, frameReduceInput(outputs.map((o) => o.body)), 'f18');
    expect(json(reduced)).toMatchObject({ count: 4, ok: true, failed: [], distinctEntropy: 4, distinctChecksums: 1, restored: 4 });
  });

  it.skipIf(withoutC)('wordfreq (clang wasm32-wasi) - stop words from init, counts from the body, stdout in the logs', async () => {
    const info = await pool.warm('wordfreq', program('wordfreq'));
    expect(info.logs).toEqual([{ level: 'info', message: 'wordfreq: init with 2 stop words' }]);
    const result = await pool.handle('wordfreq', request({ query: 'n=3', body: bytes('the cat and the hat a cat') }), 'f19');
    expect(json(result)).toEqual({ words: 4, unique: 3, top: [{ word: 'cat', count: 2 }, { word: 'and', count: 1 }, { word: 'hat', count: 1 }] });
    expect(result.logs).toHaveLength(1);
    expect(result.logs[0].message).toMatch(/^wordfreq: 4 words, 3 unique, [\d.]+ ms$/);
    const bad = await pool.handle('wordfreq', request({ query: 'n=0', body: bytes('x') }), 'f20');
    expect(bad.status).toBe(400);
  });
});
