/** Per-call cost through the pool, printed beside a bare worker round trip (the floor any pool call pays). */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { GuestPool } from './guest-pool.js';

const wabt = await (await import('wabt')).default();
const wat = (src: string) => new Uint8Array(wabt.parseWat('test.wat', src).toBinary({}).buffer);

const ECHO = wat(`(module
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 16)
  (func (export "handle") (result i32)
    (local $n i32)
    (local.set $n (call $input_size))
    (drop (call $input_read (i32.const 1024) (local.get $n) (i32.const 0)))
    (call $out (i32.const 1024) (local.get $n))
    (i32.const 0)))`);

/** Echo whose init fills all of its 1 MiB of memory, so every clone restores 1 MiB of data. */
const ECHO_1MIB = wat(`(module
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 16 64)
  (func (export "init") (local $i i32)
    (loop $fill
      (i32.store (local.get $i) (i32.const 0x01010101))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1048576)))))
  (func (export "handle") (result i32)
    (local $n i32)
    (local.set $n (call $input_size))
    (drop (call $input_read (i32.const 1024) (local.get $n) (i32.const 0)))
    (call $out (i32.const 1024) (local.get $n))
    (i32.const 0)))`);

const CALLS = 2000;
const limits = { callTimeoutMs: 10_000, initTimeoutMs: 10_000, maxOutputBytes: 4 << 20, maxLogLines: 64, maxLogBytes: 65536 };
const request = { method: 'POST', path: '/', query: '', headers: [['content-type', 'text/plain']] as [string, string][], body: new TextEncoder().encode('hello') };

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000).toFixed(0);
  return `median ${at(0.5)} µs, p90 ${at(0.9)} µs, p99 ${at(0.99)} µs`;
}

let pool: GuestPool;

beforeAll(async () => {
  pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent') });
  await pool.warm('echo', ECHO);
  await pool.warm('echo-1mib', ECHO_1MIB);
});
afterAll(() => pool?.close());

describe('timing', () => {
  it('timing - bare worker round trip (baseline)', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.on('message', (m) => { const body = new Uint8Array(m.input.length); body.set(m.input); parentPort.postMessage({ id: m.id, status: 200, headers: [], body, logs: [], droppedLogLines: 0, durationMs: 0 }, [body.buffer]); });`,
      { eval: true },
    );
    let answer: (() => void) | undefined;
    worker.on('message', () => answer?.());
    const roundTrip = async (i: number) => {
      const started = performance.now();
      const input = request.body.slice();
      await new Promise<void>((resolve) => {
        answer = resolve;
        worker.postMessage({ type: 'call', id: i, key: 'echo', entry: 'handle', args: [], input, request }, [input.buffer]);
      });
      return performance.now() - started;
    };
    const backToBack: number[] = [];
    for (let i = 0; i < CALLS; i++) backToBack.push(await roundTrip(i));
    const spaced: number[] = [];
    for (let i = 0; i < CALLS / 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      spaced.push(await roundTrip(i));
    }
    console.log(`bare worker round trip, back to back: ${summary(backToBack.slice(CALLS / 4))}; 1 ms apart: ${summary(spaced)}`);
    await worker.terminate();
  });

  for (const key of ['echo', 'echo-1mib']) {
    it(`timing - ${key}: sequential and concurrent calls`, async () => {
      const total: number[] = [];
      const inThread: number[] = [];
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now();
        const result = await pool.handle(key, request, `t${i}`);
        total.push(performance.now() - started);
        inThread.push(result.durationMs);
      }
      // The first quarter warms up the JIT and the thread caches.
      console.log(`${key} back to back, end to end: ${summary(total.slice(CALLS / 4))}; in the guest thread: ${summary(inThread.slice(CALLS / 4))}`);
      // Real calls arrive with gaps (network, gateway), in which a thread makes its next instance ahead.
      const spaced: number[] = [];
      for (let i = 0; i < CALLS / 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        const started = performance.now();
        await pool.handle(key, request, `s${i}`);
        spaced.push(performance.now() - started);
      }
      console.log(`${key} 1 ms apart, end to end: ${summary(spaced)}`);
      const started = performance.now();
      await Promise.all(Array.from({ length: CALLS }, (_, i) => pool.handle(key, request, `u${i}`)));
      const perCall = ((performance.now() - started) / CALLS) * 1000;
      console.log(`${key} ${CALLS} concurrent calls on ${pool.size} threads: ${perCall.toFixed(0)} µs per call (${Math.round(1e6 / perCall)} calls/s)`);
      const median = [...total].sort((a, b) => a - b)[total.length >> 1];
      expect(median).toBeLessThan(5);
    });
  }
});
