/** The guest pool: errors, time limits and thread replacement, queueing, concurrency, jobs, warm and evict. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { GuestPool, MAX_QUEUED_CALLS, type GuestLimits } from './guest-pool.js';
import { frameReduceInput } from '@flurry/core';
import { wat } from '../../../test/helpers/wat.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);
const request = (body = new Uint8Array(0)) => ({ method: 'POST', path: '/', query: '', headers: [] as [string, string][], body });
const silent = createLogger('test', {}, 'silent');

const IO = `
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))`;

const ECHO = wat(`(module ${IO}
  (memory (export "memory") 1 16)
  (func (export "handle") (result i32)
    (local $n i32)
    (local.set $n (call $input_size))
    (drop (call $input_read (i32.const 1024) (local.get $n) (i32.const 0)))
    (call $out (i32.const 1024) (local.get $n))
    (i32.const 0)))`);

/** handle does what its first input byte says: t trap, s status 7, l loop forever, o write 5000 bytes, v return nothing. */
const MISCHIEF = wat(`(module ${IO}
  (memory (export "memory") 1 1)
  (func (export "handle") (result i32)
    (local $i i32)
    (drop (call $input_read (i32.const 0) (i32.const 1) (i32.const 0)))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 116)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 115)) (then (return (i32.const 7))))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 108)) (then (loop $forever (br $forever))))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 111))
      (then (loop $more
        (call $out (i32.const 0) (i32.const 1000))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 5))))))
    (call $out (i32.const 0) (i32.const 1))
    (i32.const 0)))`);

/** A void handle: no status means success. */
const VOID_HANDLE = wat(`(module ${IO}
  (memory (export "memory") 1 1)
  (func (export "handle") (call $out (i32.const 0) (i32.const 0))))`);

/** run reports progress and answers "<index>/<count>"; reduce answers "<count>:" and its framed input. */
const JOB = wat(`(module ${IO}
  (import "flurry" "progress" (func $progress (param i32 i32)))
  (memory (export "memory") 1 1)
  (func (export "run") (param $i i32) (param $n i32) (result i32)
    (call $progress (i32.const 1) (i32.const 2))
    (call $progress (i32.const 2) (i32.const 2))
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (local.get $i)))
    (i32.store8 (i32.const 1) (i32.const 47))
    (i32.store8 (i32.const 2) (i32.add (i32.const 48) (local.get $n)))
    (call $out (i32.const 0) (i32.const 3))
    (i32.const 0))
  (func (export "reduce") (param $n i32) (result i32)
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (local.get $n)))
    (i32.store8 (i32.const 1) (i32.const 58))
    (call $out (i32.const 0) (i32.const 2))
    (call $out (i32.const 16) (call $input_read (i32.const 16) (i32.const 1000) (i32.const 0)))
    (i32.const 0)))`);

const TRAP_IN_INIT = wat(`(module (memory (export "memory") 1 1) (func (export "init") unreachable) (func (export "handle") (result i32) (i32.const 0)))`);
const LOOP_IN_INIT = wat(`(module (memory (export "memory") 1 1) (func (export "init") (loop $l (br $l))) (func (export "handle") (result i32) (i32.const 0)))`);
const UNKNOWN_IMPORT = wat(`(module (import "env" "mystery" (func)) (memory (export "memory") 1 1) (func (export "handle") (result i32) (i32.const 0)))`);
const UNKNOWN_FLURRY_IMPORT = wat(`(module (import "flurry" "teleport" (func)) (memory (export "memory") 1 1) (func (export "handle") (result i32) (i32.const 0)))`);

// Init gets a generous limit (a loaded machine can make a legitimate init slow); the endless-init test sets its own.
const limits: GuestLimits = { callTimeoutMs: 2000, initTimeoutMs: 10_000, maxOutputBytes: 4096, maxLogLines: 64, maxLogBytes: 65536 };
let pool: GuestPool;

beforeAll(async () => {
  pool = await GuestPool.start({ threads: 2, limits, log: silent });
  await Promise.all([pool.warm('echo', ECHO), pool.warm('mischief', MISCHIEF), pool.warm('job', JOB), pool.warm('void', VOID_HANDLE)]);
});
afterAll(() => pool?.close());

describe('guest pool', () => {
  it('errors - a trap is guest_trap with the trap message, and the thread lives on', async () => {
    await expect(pool.handle('mischief', request(bytes('t')), 'p1')).rejects.toMatchObject({ code: 'guest_trap', message: 'unreachable' });
    expect(text((await pool.handle('mischief', request(bytes('x')), 'p2')).body)).toBe('x');
    expect(pool.size).toBe(2);
  });

  it('errors - a non-zero status is guest_error; a void handle succeeds', async () => {
    await expect(pool.handle('mischief', request(bytes('s')), 'p3')).rejects.toMatchObject({ code: 'guest_error', message: 'guest returned status 7' });
    expect((await pool.handle('void', request(), 'p4')).status).toBe(200);
  });

  it('errors - output over the cap is output_limit', async () => {
    await expect(pool.handle('mischief', request(bytes('o')), 'p5')).rejects.toMatchObject({ code: 'output_limit' });
  });

  it('errors - a key that is not warm is not_found; an entry point the module lacks is bad_request', async () => {
    await expect(pool.handle('nope', request(), 'p6')).rejects.toMatchObject({ code: 'not_found' });
    await expect(pool.run('echo', 0, 1, new Uint8Array(0), 'p7')).rejects.toMatchObject({ code: 'bad_request', message: 'the module does not export run' });
  });

  it('timeout - an endless loop times out, its thread is replaced and the pool keeps answering', async () => {
    await expect(pool.handle('mischief', request(bytes('l')), 'p8')).rejects.toMatchObject({ code: 'timeout', message: 'call exceeded 2000 ms' });
    expect(pool.size).toBe(2);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => pool.handle('echo', request(bytes(`after ${i}`)), `p9-${i}`)));
    expect(answers.map((a) => text(a.body))).toEqual(Array.from({ length: 10 }, (_, i) => `after ${i}`));
    expect(pool.running).toBe(0);
  });

  it('crash - a thread that dies mid-call is replaced and its call fails with internal', async () => {
    // Its own pool with a long call limit: on a loaded machine terminate() can take longer than the shared pool's 2000 ms.
    const crashy = await GuestPool.start({ threads: 2, limits: { ...limits, callTimeoutMs: 30_000 }, log: silent });
    try {
      await crashy.warm('mischief', MISCHIEF);
      await crashy.warm('echo', ECHO);
      const looping = crashy.handle('mischief', request(bytes('l')), 'p14');
      // White box: kill the worker running the call from outside, as an OOM or a native crash would.
      let busy = crashy.scheduler.busyThreads()[0];
      for (let i = 0; !busy && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 10));
        busy = crashy.scheduler.busyThreads()[0];
      }
      await busy!.worker.terminate();
      await expect(looping).rejects.toMatchObject({ code: 'internal', message: expect.stringContaining('died') });
      expect(crashy.size).toBe(2);
      expect(text((await crashy.handle('echo', request(bytes('alive')), 'p15')).body)).toBe('alive');
    } finally {
      await crashy.close();
    }
  });

  it('concurrency - 200 calls over 2 threads all get their own answer', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.handle('echo', request(bytes(`call ${i}`)), `c${i}`)));
    expect(answers.map((a) => text(a.body))).toEqual(Array.from({ length: 200 }, (_, i) => `call ${i}`));
  });

  it('input - the caller keeps its bytes (the pool transfers a copy)', async () => {
    const body = bytes('keep me');
    await pool.handle('echo', request(body), 'p10');
    expect(text(body)).toBe('keep me');
  });

  it('run - clones get index and count and report progress; the last report reaches the callback and comes with the result', async () => {
    const seen: [number, number][] = [];
    const result = await pool.run('job', 3, 4, new Uint8Array(0), 'j1', (done, total) => seen.push([done, total]));
    expect(text(result.body)).toBe('3/4');
    expect(seen[0]).toEqual([1, 2]);
    expect(seen.at(-1)).toEqual([2, 2]);
    expect(result.progress).toEqual({ done: 2, total: 2 });
  });

  it('reduce - gets the count and the clone outputs framed with u32 lengths', async () => {
    const outputs = await Promise.all([0, 1, 2].map((i) => pool.run('job', i, 3, new Uint8Array(0), `j${i}`)));
    const framed = frameReduceInput(outputs.map((o) => o.body));
    const result = await pool.reduce('job', 3, framed, 'j3');
    expect(result.body.subarray(0, 2)).toEqual(bytes('3:'));
    expect(result.body.subarray(2)).toEqual(framed);
    expect(new DataView(framed.buffer).getUint32(0, true)).toBe(3);
  });

  it('warm - concurrent warms of one key share one promise; warming a warm key answers its info', async () => {
    const a = pool.warm('echo-2', ECHO);
    const b = pool.warm('echo-2', ECHO);
    expect(a).toBe(b);
    expect(await pool.warm('echo-2', ECHO)).toBe(await a);
    expect(pool.warmKeys()).toContain('echo-2');
  });

  it('warm - an unknown import fails with a clear error naming it', async () => {
    await expect(pool.warm('mystery', UNKNOWN_IMPORT)).rejects.toMatchObject({ code: 'invalid_module', message: 'module imports env.mystery which Flurry does not provide' });
    await expect(pool.warm('teleport', UNKNOWN_FLURRY_IMPORT)).rejects.toMatchObject({ code: 'invalid_module', message: 'module imports flurry.teleport which Flurry does not provide' });
    expect(pool.has('mystery')).toBe(false);
  });

  it('warm - bytes that are not wasm are invalid_module; a trap in init is guest_trap', async () => {
    await expect(pool.warm('garbage', bytes('not wasm at all'))).rejects.toMatchObject({ code: 'invalid_module' });
    await expect(pool.warm('trap-init', TRAP_IN_INIT)).rejects.toMatchObject({ code: 'guest_trap', message: 'unreachable' });
    expect(pool.has('trap-init')).toBe(false);
  });

  it('warm - an endless init times out and the thread is replaced', async () => {
    const strict = await GuestPool.start({ threads: 2, limits: { ...limits, initTimeoutMs: 3000 }, log: silent });
    try {
      await strict.warm('echo', ECHO);
      await expect(strict.warm('loop-init', LOOP_IN_INIT)).rejects.toMatchObject({ code: 'timeout', message: 'init exceeded 3000 ms' });
      expect(strict.size).toBe(2);
      expect(text((await strict.handle('echo', request(bytes('still here')), 'p11')).body)).toBe('still here');
    } finally {
      await strict.close();
    }
  });

  it('evict - an evicted key answers not_found and can be warmed again', async () => {
    await pool.warm('echo-3', ECHO);
    pool.evict('echo-3');
    expect(pool.has('echo-3')).toBe(false);
    await expect(pool.handle('echo-3', request(), 'p12')).rejects.toMatchObject({ code: 'not_found' });
    await pool.warm('echo-3', ECHO);
    expect(text((await pool.handle('echo-3', request(bytes('back')), 'p13')).body)).toBe('back');
  });

  it('evict - evicting while warming fails that warm with not_found and leaves the key cold', async () => {
    const warming = pool.warm('echo-4', ECHO);
    pool.evict('echo-4');
    await expect(warming).rejects.toMatchObject({ code: 'not_found' });
    expect(pool.has('echo-4')).toBe(false);
  });
});

describe('guest pool queueing and closing', () => {
  it(`queue - calls wait in FIFO order; beyond ${MAX_QUEUED_CALLS} waiting the next is no_capacity; close fails the waiting ones`, async () => {
    const small = await GuestPool.start({ threads: 1, limits: { ...limits, callTimeoutMs: 5000 }, log: silent });
    try {
      await small.warm('mischief', MISCHIEF);
      await small.warm('echo', ECHO);
      const blocker = small.handle('mischief', request(bytes('l')), 'q0');
      const waiting = Array.from({ length: MAX_QUEUED_CALLS }, (_, i) => small.handle('echo', request(bytes(String(i))), `q${i + 1}`).catch((e: { code: string }) => e.code));
      expect(small.queued).toBe(MAX_QUEUED_CALLS);
      await expect(small.handle('echo', request(), 'over')).rejects.toMatchObject({ code: 'no_capacity' });
      const closed = small.close(50);
      const codes = new Set(await Promise.all(waiting));
      expect(codes).toEqual(new Set(['unavailable']));
      await expect(blocker).rejects.toMatchObject({ code: 'unavailable' });
      await closed;
      await expect(small.handle('echo', request(), 'late')).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      await small.close(0);
    }
  });

  it('queue - with one thread, queued calls run in the order they came', async () => {
    const single = await GuestPool.start({ threads: 1, limits, log: silent });
    try {
      await single.warm('echo', ECHO);
      const order: number[] = [];
      await Promise.all(Array.from({ length: 50 }, (_, i) => single.handle('echo', request(bytes(String(i))), `o${i}`).then(() => order.push(i))));
      expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      await single.close();
    }
  });

  it('close - waits for calls in flight before it ends the threads', async () => {
    const closing = await GuestPool.start({ threads: 2, limits, log: silent });
    await closing.warm('echo', ECHO);
    const inFlight = closing.handle('echo', request(bytes('finish me')), 'z1');
    await closing.close();
    expect(text((await inFlight).body)).toBe('finish me');
    expect(closing.size).toBe(0);
  });
});
