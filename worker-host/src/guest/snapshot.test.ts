/** Snapshot and restore, with every pager: every call is a fresh instance in the parent's state after init. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { nativePagerStatus } from '../native/pager.js';
import { GuestPool, type PagerMode } from './guest-pool.js';
import { wat } from '../../../test/helpers/wat.js';

const request = () => ({ method: 'GET', path: '/', query: '', headers: [] as [string, string][], body: new Uint8Array(0) });
const view = (r: { body: Uint8Array }) => new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);

/**
 * init sets a counter in memory to 41, globals of three types, changes a data
 * segment's bytes, reads the init input and grows memory by one page; the
 * start function counts how often it ran. handle bumps everything it reports,
 * so a call that saw a previous call's state would answer differently.
 */
const COUNTER = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "input_size" (func $input_size (result i32)))
  (import "flurry" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (data (i32.const 64) "abc")
  (global $g32 (mut i32) (i32.const 0))
  (global $g64 (mut i64) (i64.const 0))
  (global $gf (mut f64) (f64.const 0))
  (global $starts (mut i32) (i32.const 0))
  (global $restores (mut i32) (i32.const 0))
  (func $start (global.set $starts (i32.add (global.get $starts) (i32.const 1))))
  (start $start)
  (func (export "init")
    (i32.store (i32.const 0) (i32.const 41))
    (global.set $g32 (i32.const 7))
    (global.set $g64 (i64.const 1099511627776))
    (global.set $gf (f64.const 2.5))
    (i32.store8 (i32.const 64) (i32.const 120))
    (i32.store (i32.const 80) (call $input_read (i32.const 84) (i32.const 8) (i32.const 0)))
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 65544) (i32.const 1234)))
  (func (export "on_restore") (global.set $restores (i32.add (global.get $restores) (i32.const 1))))
  (func (export "handle") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (global.set $g32 (i32.add (global.get $g32) (i32.const 1)))
    (global.set $g64 (i64.add (global.get $g64) (i64.const 1)))
    (global.set $gf (f64.add (global.get $gf) (f64.const 1)))
    (global.set $starts (i32.add (global.get $starts) (i32.const 100)))
    (i32.store (i32.const 4) (global.get $g32))
    (i64.store (i32.const 8) (global.get $g64))
    (f64.store (i32.const 16) (global.get $gf))
    (i32.store (i32.const 24) (global.get $starts))
    (i32.store (i32.const 28) (global.get $restores))
    (i32.store (i32.const 32) (memory.size))
    (i32.store (i32.const 36) (i32.load (i32.const 65544)))
    (call $out (i32.const 0) (i32.const 40))
    (call $out (i32.const 64) (i32.const 3))
    (call $out (i32.const 80) (i32.const 12))
    (i32.const 0)))`);

/** handle grows memory by 2 (from 1 page), writes into the new pages, then tries to grow past the maximum of 4. */
const GROWER = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 4)
  (func (export "handle") (result i32)
    (i32.store (i32.const 0) (memory.grow (i32.const 2)))
    (i32.store (i32.const 131072) (i32.const 99))
    (i32.store (i32.const 4) (memory.grow (i32.const 2)))
    (i32.store (i32.const 8) (memory.size))
    (i32.store (i32.const 12) (i32.load (i32.const 131072)))
    (i32.store (i32.const 16) (memory.grow (i32.const 1)))
    (i32.store (i32.const 20) (memory.size))
    (call $out (i32.const 0) (i32.const 24))
    (i32.const 0)))`);

/** A memory of no pages at snapshot time; handle grows it and uses the new page. */
const EMPTY = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 0 2)
  (func (export "handle") (result i32)
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 8) (i32.const 5))
    (call $out (i32.const 8) (i32.const 4))
    (i32.const 0)))`);

const limits = { callTimeoutMs: 5000, initTimeoutMs: 5000, maxOutputBytes: 4096, maxLogLines: 64, maxLogBytes: 65536 };
const status = nativePagerStatus();
if (!status.copyOnWrite) console.warn(`[snapshot] skipping the native pager: ${status.reason}`);
const PAGERS: PagerMode[] = status.copyOnWrite ? ['native', 'portable'] : ['portable'];

describe.each(PAGERS)('snapshot and restore (%s pager)', (pager) => {
  let pool: GuestPool;

  beforeAll(async () => {
    pool = await GuestPool.start({ threads: 2, limits, log: createLogger('test', {}, 'silent'), pager });
    await pool.warm('counter', COUNTER, new TextEncoder().encode('seed'));
    await pool.warm('grower', GROWER);
    await pool.warm('empty', EMPTY);
  });
  afterAll(() => pool?.close());

  it('fresh - a counter bumped by every call always answers the init value + 1', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await pool.handle('counter', request(), `s${i}`);
      expect(view(r).getUint32(0, true)).toBe(42);
    }
  });

  it('globals - mutable globals of every number type set in init are seen by calls', async () => {
    const r = view(await pool.handle('counter', request(), 's20'));
    expect(r.getUint32(4, true)).toBe(8);
    expect(r.getBigUint64(8, true)).toBe(1099511627777n);
    expect(r.getFloat64(16, true)).toBe(3.5);
  });

  it('start - the start function runs once in the parent, never in a clone; on_restore runs in each', async () => {
    const r = view(await pool.handle('counter', request(), 's21'));
    expect(r.getUint32(24, true)).toBe(101);
    expect(r.getUint32(28, true)).toBe(1);
  });

  it('memory - what init wrote over a data segment and memory grown in init are restored', async () => {
    const r = await pool.handle('counter', request(), 's22');
    expect(view(r).getUint32(32, true)).toBe(2);
    expect(view(r).getUint32(36, true)).toBe(1234);
    expect(new TextDecoder().decode(r.body.subarray(40, 43))).toBe('xbc');
  });

  it('init input - init reads the init input', async () => {
    const r = await pool.handle('counter', request(), 's23');
    expect(view(r).getUint32(43, true)).toBe(4);
    expect(new TextDecoder().decode(r.body.subarray(47, 51))).toBe('seed');
  });

  it('memory - growth inside a call works and growth past the declared maximum returns -1', async () => {
    for (let i = 0; i < 3; i++) {
      const r = view(await pool.handle('grower', request(), `g${i}`));
      expect(r.getInt32(0, true)).toBe(1);
      expect(r.getInt32(4, true)).toBe(-1);
      expect(r.getInt32(8, true)).toBe(3);
      expect(r.getInt32(12, true)).toBe(99);
      expect(r.getInt32(16, true)).toBe(3);
      expect(r.getInt32(20, true)).toBe(4);
    }
  });

  it('memory - a parent whose memory is empty makes clones that can grow it', async () => {
    for (let i = 0; i < 2; i++) expect(view(await pool.handle('empty', request(), `e${i}`)).getUint32(0, true)).toBe(5);
  });

  it('warm info - reports memory size and the number of mutable globals', async () => {
    const info = await pool.warm('counter', COUNTER);
    expect(info.memoryBytes).toBe(2 * 65536);
    expect(info.globals).toBe(5);
  });
});
