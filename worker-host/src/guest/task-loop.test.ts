/** A task clone in the guest pool (no fleet): one instance across tasks, outputs per task, a trapped task and a looping one. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type WireError } from '@flurry/core';
import { GuestPool, type GuestLimits } from './guest-pool.js';
import type { TaskSource } from './task-source.js';
import { wat } from '../../../test/helpers/wat.js';

/**
 * run_task writes "<task>/<tasks>:<calls>" where calls counts run_task calls in this instance (a global kept between
 * tasks; restored to 0 in a fresh instance); task 7 traps, task 8 spins 60 ms first, task 9 loops forever.
 */
const TASKS = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "monotonic_ms" (func $now (result f64)))
  (memory (export "memory") 1 1)
  (global $calls (mut i32) (i32.const 0))
  (func $digit (param $at i32) (param $v i32) (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $v))))
  (func (export "run_task") (param $t i32) (param $n i32) (result i32) (local $t0 f64)
    (if (i32.eq (local.get $t) (i32.const 7)) (then unreachable))
    (if (i32.eq (local.get $t) (i32.const 8)) (then
      (local.set $t0 (call $now))
      (loop $spin (br_if $spin (f64.lt (f64.sub (call $now) (local.get $t0)) (f64.const 60))))))
    (if (i32.eq (local.get $t) (i32.const 9)) (then (loop $l (br $l))))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $digit (i32.const 0) (local.get $t))
    (i32.store8 (i32.const 1) (i32.const 47))
    (call $digit (i32.const 2) (local.get $n))
    (i32.store8 (i32.const 3) (i32.const 58))
    (call $digit (i32.const 4) (global.get $calls))
    (call $out (i32.const 0) (i32.const 5))
    (i32.const 0))
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))`);

const limits: GuestLimits = { callTimeoutMs: 2000, initTimeoutMs: 10_000, maxOutputBytes: 4096, maxLogLines: 64, maxLogBytes: 65536 };
let pool: GuestPool;

beforeAll(async () => {
  pool = await GuestPool.start({ threads: 1, limits, log: createLogger('test', {}, 'silent') });
  await pool.warm('tasks', TASKS);
});
afterAll(() => pool?.close());

/** Hands out `batches` in turn, then none; records what the clone did. */
function source(batches: number[][]) {
  const outputs = new Map<number, string>();
  const failures: { task: number; error: WireError }[] = [];
  const started: number[] = [];
  const feed: TaskSource = {
    next: async () => batches.shift() ?? [],
    started: (t) => void started.push(t),
    done: (t, output) => void outputs.set(t, new TextDecoder().decode(output)),
    failed: (task, error) => void failures.push({ task, error }),
  };
  return { feed, outputs, failures, started };
}

describe('task loop', () => {
  it('tasks - batch after batch in one instance (its state kept between tasks), each output apart, then the clone ends', async () => {
    const s = source([[0, 1], [2], [5, 3]]);
    const result = await pool.runTasks('tasks', 6, new Uint8Array(0), 't1', s.feed);
    expect(result.body.length).toBe(0);
    expect(s.started).toEqual([0, 1, 2, 5, 3]);
    expect([...s.outputs]).toEqual([[0, '0/6:1'], [1, '1/6:2'], [2, '2/6:3'], [5, '5/6:4'], [3, '3/6:5']]);
  });

  it('trap - fails its task only; the next task runs in a fresh instance', async () => {
    const s = source([[1, 7, 2]]);
    await pool.runTasks('tasks', 8, new Uint8Array(0), 't2', s.feed);
    expect(s.failures).toEqual([{ task: 7, error: { code: 'guest_trap', message: 'unreachable' } }]);
    expect([...s.outputs]).toEqual([[1, '1/8:1'], [2, '2/8:1']]);
  });

  it('time limit - counts per task: tasks that together outlast it finish, one endless task ends the clone with timeout', async () => {
    const quick = source([[8, 8], [8], [8, 8]]);
    await pool.runTasks('tasks', 9, new Uint8Array(0), 't3', quick.feed, undefined, 250);
    expect(quick.started).toEqual([8, 8, 8, 8, 8]);
    expect(quick.outputs.get(8)).toBe('8/9:5');
    const endless = source([[0, 9, 1]]);
    await expect(pool.runTasks('tasks', 10, new Uint8Array(0), 't4', endless.feed, undefined, 250)).rejects.toMatchObject({ code: 'timeout' });
    expect(endless.started).toEqual([0, 9]);
  });

  it('source failure - a clone whose tasks cannot be had fails with why', async () => {
    const s = source([]);
    s.feed.next = () => Promise.reject(Object.assign(new Error('the job\'s task server did not answer'), { code: 'unavailable' }));
    await expect(pool.runTasks('tasks', 2, new Uint8Array(0), 't5', s.feed)).rejects.toMatchObject({ message: expect.stringContaining('did not answer') });
  });
});
