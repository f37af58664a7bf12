/**
 * The fork engine, one suite run against every pager mode (copy-on-write from
 * a memfd with the native pager, copying with the portable one): local clones
 * of the real `pattern` program, snapshot images, adoption by copy, start
 * notification, spares, release and abort.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, describeMemory } from '@flurry/core';
import { nativePagerStatus } from '../native/pager.js';
import { GuestPool, type CallResult, type PagerMode } from './guest-pool.js';
import { wat } from '../../../test/helpers/wat.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (r: { body: Uint8Array }) => new TextDecoder().decode(r.body);
const silent = createLogger('test', {}, 'silent');
const limits = { callTimeoutMs: 5000, initTimeoutMs: 10_000, maxOutputBytes: 1 << 20, maxLogLines: 64, maxLogBytes: 65536 };

const PATTERN = new Uint8Array(readFileSync(new URL('../../../functions/build/pattern.wasm', import.meta.url)));
const PATTERN_INIT = bytes('{"mib": 8, "seed": 7}');

/** A pattern clone's output without what differs in every clone (entropy, Math.random, timings). */
function samePart(result: CallResult): Record<string, unknown> {
  const { entropyHex, mathRandom, verifyMs, writeMs, ...rest } = JSON.parse(text(result)) as Record<string, unknown>;
  expect([typeof entropyHex, typeof mathRandom, typeof verifyMs, typeof writeMs]).toEqual(['string', 'number', 'number', 'number']);
  return rest;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Mutable globals of every number type set by init (an immutable one first,
 * whose constant 11 is encoded as the byte 0x0b that ends constant
 * expressions); run writes them and a word of memory to its output.
 */
const GLOBALS = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 4)
  (global $k i32 (i32.const 11))
  (global $a (mut i32) (i32.const 0))
  (global $b (mut i64) (i64.const 0))
  (global $c (mut f32) (f32.const 0))
  (global $d (mut f64) (f64.const 0))
  (func (export "init")
    (global.set $a (i32.const -5))
    (global.set $b (i64.const -9007199254740993))
    (global.set $c (f32.const 1.5))
    (global.set $d (f64.const 0.1))
    (i32.store (i32.const 40000) (i32.const 4242)))
  (func (export "run") (param $i i32) (param $n i32) (result i32)
    (i32.store (i32.const 0) (global.get $a))
    (i64.store (i32.const 4) (global.get $b))
    (f32.store (i32.const 12) (global.get $c))
    (f64.store (i32.const 16) (global.get $d))
    (i32.store (i32.const 24) (i32.load (i32.const 40000)))
    (i32.store (i32.const 28) (global.get $k))
    (call $out (i32.const 0) (i32.const 32))
    (i32.const 0)))`);

/** run loops forever (for abort and timeouts). */
const SPIN = wat(`(module (memory (export "memory") 1 1) (func (export "run") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))`);

const status = nativePagerStatus();
const PAGERS: PagerMode[] = ['native', 'portable'];
if (!status.copyOnWrite) console.warn(`[fork] skipping the native pager's suite: ${status.reason}`);
/** Normalised clone outputs by pager mode, compared across modes at the end. */
const outputsByPager = new Map<PagerMode, Record<string, unknown>[]>();

describe.each(PAGERS)('fork (%s pager)', (pager) => {
  const skip = pager === 'native' && !status.copyOnWrite;
  const cloneMode = pager === 'native' ? 'cow' : 'copy';
  let pool: GuestPool;

  beforeAll(async () => {
    if (skip) return;
    pool = await GuestPool.start({ threads: 2, limits, log: silent, pager });
    await pool.warm('pattern', PATTERN, PATTERN_INIT);
    await pool.warm('globals', GLOBALS);
    await pool.warm('spin', SPIN);
  });
  afterAll(() => pool?.close());

  it.skipIf(skip)('local clones - 16 clones on 2 threads read the parent pattern, keep their writes private, and leave the snapshot unchanged', async () => {
    expect(pool.pager).toBe(pager);
    const image = pool.snapshotImage('pattern');
    const before = sha256(image.read(0, image.byteLength));
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => pool.run('pattern', i, 16, bytes('{"verify": "all"}'), `c${i}`)));
    const outputs = results.map(samePart);
    for (const [i, out] of outputs.entries()) {
      // Every clone verified the whole region before writing its slice: a clone that saw another's writes would mismatch.
      expect(out).toMatchObject({ index: i, count: 16, ok: true, mismatches: 0, verifiedBytes: 8 << 20, written: true, writeOk: true, restored: true, inits: 1 });
    }
    expect(new Set(outputs.map((o) => o.checksum)).size).toBe(1);
    for (const r of results) expect(r.memory).toMatchObject({ mode: cloneMode, pagesWaited: 0, faultWaitMs: 0 });
    expect(sha256(image.read(0, image.byteLength))).toBe(before);
    outputsByPager.set(pager, outputs);
  });

  it.skipIf(skip)('snapshot image - sizes, the zero bitmap of its bytes, typed globals with i64 as a decimal string', () => {
    const image = pool.snapshotImage('globals');
    expect(image).toMatchObject({ byteLength: 65536, maximumPages: 4 });
    expect(image.globals).toEqual([
      { name: '__flurry_global_1', type: 'i32', value: -5 },
      { name: '__flurry_global_2', type: 'i64', value: '-9007199254740993' },
      { name: '__flurry_global_3', type: 'f32', value: 1.5 },
      { name: '__flurry_global_4', type: 'f64', value: 0.1 },
    ]);
    const all = image.read(0, image.byteLength);
    expect(image.zeroPages).toEqual(describeMemory(all).zeroPages);
    expect(new DataView(all.buffer, all.byteOffset).getInt32(40000, true)).toBe(4242);
    expect(image.read(40000, 4)).toEqual(Uint8Array.of(0x92, 0x10, 0, 0));
    expect(pager === 'native' ? image.memfd : image.bytes).toBeDefined();
    expect(() => image.read(65530, 8)).toThrow(RangeError);
    expect(() => pool.snapshotImage('nope')).toThrow(/holds no snapshot/);
  });

  it.skipIf(skip)('start - onStarted comes once the clone runs, before its result; startMs and the memory restore are reported', async () => {
    const events: string[] = [];
    const result = await pool.run('pattern', 0, 1, bytes('{"verify": "none", "write": false}'), 's1', undefined, () => events.push('started'));
    events.push('result');
    expect(events).toEqual(['started', 'result']);
    expect(result.startMs).toBeGreaterThan(0);
    expect(result.startMs).toBeLessThanOrEqual(result.durationMs);
    expect(result.memory!.restoreMs).toBeGreaterThan(0);
    // handle calls are clones too.
    const handled = await pool.handle('pattern', { method: 'GET', path: '/', query: 'verify=none&write=false', headers: [], body: new Uint8Array(0) }, 's2');
    expect(handled.memory?.mode).toBe(cloneMode);
  });

  it.skipIf(skip)('spare - the next instance is made while the thread idles, serves one call only, and is as fresh as a new one', async () => {
    const single = await GuestPool.start({ threads: 1, limits, log: silent, pager });
    // The thread makes its spare while no message waits: a call that comes at once takes no spare.
    const idle = () => new Promise((resolve) => setTimeout(resolve, 100));
    try {
      await single.warm('pattern', PATTERN, PATTERN_INIT);
      const runs: CallResult[] = [];
      for (let i = 0; i < 3; i++) {
        await idle();
        runs.push(await single.run('pattern', i, 3, bytes('{"verify": "all"}'), `sp${i}`));
      }
      // The first one too: the thread made it when the snapshot arrived.
      expect(runs.map((r) => r.memory!.spare)).toEqual([true, true, true]);
      // Each verified the whole region after the previous clone wrote its slice on the same thread.
      for (const r of runs) expect(samePart(r)).toMatchObject({ ok: true, mismatches: 0 });
    } finally {
      await single.close();
    }
  });

  it.skipIf(skip)('adopt by copy - clones of a snapshot adopted from its bytes answer what local clones answer, globals included', async () => {
    const other = await GuestPool.start({ threads: 2, limits, log: silent, pager });
    try {
      for (const key of ['pattern', 'globals']) {
        const image = pool.snapshotImage(key);
        const shared = new SharedArrayBuffer(image.byteLength);
        new Uint8Array(shared).set(image.read(0, image.byteLength));
        const source = key === 'pattern' ? { kind: 'copy' as const, bytes: shared, zeroPages: image.zeroPages } : { kind: 'copy' as const, bytes: shared };
        await other.adoptSnapshot(key, { moduleBytes: key === 'pattern' ? PATTERN : GLOBALS, byteLength: image.byteLength, maximumPages: image.maximumPages, globals: image.globals, source });
      }
      expect(other.has('pattern')).toBe(true);
      expect(other.warmKeys()).toEqual([]);
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => other.run('pattern', i, 16, bytes('{"verify": "all"}'), `a${i}`)));
      expect(results.map(samePart)).toEqual(outputsByPager.get(pager));
      for (const r of results) expect(r.memory?.mode).toBe('copy');
      const [local, adopted] = await Promise.all([pool.run('globals', 0, 1, new Uint8Array(0), 'g1'), other.run('globals', 0, 1, new Uint8Array(0), 'g2')]);
      expect(adopted.body).toEqual(local.body);
      const view = new DataView(adopted.body.buffer, adopted.body.byteOffset);
      expect([view.getInt32(0, true), view.getBigInt64(4, true), view.getFloat32(12, true), view.getFloat64(16, true), view.getInt32(24, true), view.getInt32(28, true)]).toEqual([-5, -9007199254740993n, 1.5, 0.1, 4242, 11]);
    } finally {
      await other.close();
    }
  });

  it.skipIf(skip)('adopt - refuses a maximum other than the module\'s, missing or mistyped globals, bad sizes, and keys in use', async () => {
    const image = pool.snapshotImage('globals');
    const source = { kind: 'copy' as const, bytes: new SharedArrayBuffer(image.byteLength) };
    const base = { moduleBytes: GLOBALS, byteLength: image.byteLength, maximumPages: 4, globals: image.globals, source };
    await expect(pool.adoptSnapshot('x1', { ...base, maximumPages: 8 })).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining("not the module's 4") });
    await expect(pool.adoptSnapshot('x2', { ...base, globals: image.globals.slice(1) })).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('lacks mutable globals __flurry_global_1') });
    await expect(pool.adoptSnapshot('x3', { ...base, globals: image.globals.map((g) => ({ ...g, type: 'f64' as const })) })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(pool.adoptSnapshot('x4', { ...base, byteLength: 1000 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(pool.adoptSnapshot('globals', base)).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('already holds') });
    await expect(pool.warm('x5', bytes('not wasm'))).rejects.toMatchObject({ code: 'invalid_module' });
    if (pager === 'portable') await expect(pool.adoptSnapshot('x6', { ...base, source: { kind: 'lazy', storeId: 1 } })).rejects.toMatchObject({ code: 'unavailable' });
    expect(['x1', 'x2', 'x3', 'x4', 'x6'].some((k) => pool.has(k))).toBe(false);
  });

  it.skipIf(skip)('release - resolves once every thread dropped the snapshot; the memfd is closed then and the key answers not_found', async () => {
    await pool.warm('release-me', GLOBALS);
    await pool.run('release-me', 0, 1, new Uint8Array(0), 'r1');
    const image = pool.snapshotImage('release-me');
    const fd = image.memfd;
    if (pager === 'native') expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^\/memfd:flurry-snapshot/);
    await pool.releaseSnapshot('release-me');
    expect(pool.has('release-me')).toBe(false);
    await expect(pool.run('release-me', 0, 1, new Uint8Array(0), 'r2')).rejects.toMatchObject({ code: 'not_found' });
    expect(() => image.read(0, 4)).toThrow(/released/);
    if (fd !== undefined) {
      // Closed (or, at worst, reused for a file that is not a snapshot).
      let target = 'closed';
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        // EBADF/ENOENT: closed.
      }
      expect(target).not.toMatch(/^\/memfd:flurry-snapshot/);
    }
    await pool.warm('release-me', GLOBALS);
    expect((await pool.run('release-me', 0, 1, new Uint8Array(0), 'r3')).body.length).toBe(32);
  });

  it.skipIf(skip)('abort - fails the running and queued calls of a key; its threads are replaced and other keys go on', async () => {
    const running = [pool.run('spin', 0, 2, new Uint8Array(0), 'x1'), pool.run('spin', 1, 2, new Uint8Array(0), 'x2'), pool.run('spin', 2, 3, new Uint8Array(0), 'x3')];
    const other = pool.run('globals', 0, 1, new Uint8Array(0), 'x4');
    await new Promise((resolve) => setTimeout(resolve, 50));
    pool.abort('spin', new Error('pages lost'));
    for (const call of running) await expect(call).rejects.toMatchObject({ code: 'unavailable', message: 'pages lost' });
    expect((await other).body.length).toBe(32);
    expect(pool.size).toBe(2);
  });
});

describe.skipIf(!status.copyOnWrite)('fork across pagers', () => {
  it('pagers - copy-on-write and copied clones of one parent answer the same', () => {
    expect(outputsByPager.get('native')).toHaveLength(16);
    expect(outputsByPager.get('native')).toEqual(outputsByPager.get('portable'));
  });
});
