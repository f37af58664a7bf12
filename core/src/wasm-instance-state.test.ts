/** Which modules can change their instance beyond memory and globals: read instruction by instruction, unknown counts as yes. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wat } from '../../test/helpers/wat.js';
import { onlyMemoryAndGlobalsChange } from './wasm-instance-state.js';

const withBody = (body: string, extra = '') => wat(`(module
  (memory (export "memory") 1 2)
  (table $t 2 4 funcref)
  (elem $e func $f)
  (data $d "xyz")
  (global $g (mut i32) (i32.const 0))
  (type $sig (func (result i32)))
  ${extra}
  (func $f (result i32) (i32.const 7))
  (func (export "run") (param i32 i32) (result i32) ${body}))`);

describe('instance state', () => {
  it('memory and globals only - loads, stores, calls (indirect too), blocks, branches, constants, bulk memory: nothing else changes', () => {
    const body = `(local $x i64) (local $y f64)
      (global.set $g (i32.load offset=4 (local.get 0)))
      (i64.store (i32.const 8) (i64.const -12345678901))
      (local.set $y (f64.add (f64.const 1.5) (f64.convert_i32_s (i32.const 3))))
      (memory.copy (i32.const 0) (i32.const 16) (i32.const 4))
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 4))
      (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
      (drop (table.size $t))
      (drop (table.get $t (i32.const 0)))
      (drop (memory.grow (i32.const 0)))
      (block $out (result i32)
        (loop $l
          (br_if $l (i32.eqz (local.get 1)))
          (br_table $out $out (i32.const 1) (local.get 0)))
        (if (result i32) (local.get 0) (then (call $f)) (else (call_indirect $t (type $sig) (i32.const 0))))
        (select (i32.const 1) (i32.const 2) (local.get 0))
        (drop)
        (i32.trunc_sat_f64_s (local.get $y))
        (drop)
        (i32.extend8_s (i32.const 255)))`;
    expect(onlyMemoryAndGlobalsChange(withBody(body))).toBe(true);
  });

  for (const [what, body] of [
    ['table.set', '(table.set $t (i32.const 0) (ref.null func)) (i32.const 0)'],
    ['table.grow', '(drop (table.grow $t (ref.null func) (i32.const 1))) (i32.const 0)'],
    ['table.fill', '(table.fill $t (i32.const 0) (ref.null func) (i32.const 1)) (i32.const 0)'],
    ['table.copy', '(table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 1)) (i32.const 0)'],
    ['table.init', '(table.init $t $e (i32.const 0) (i32.const 0) (i32.const 1)) (i32.const 0)'],
    ['elem.drop', '(elem.drop $e) (i32.const 0)'],
    ['data.drop', '(data.drop $d) (i32.const 0)'],
  ] as const) {
    it(`changes its instance - ${what}, anywhere in any function`, () => {
      expect(onlyMemoryAndGlobalsChange(withBody(`(block (br_if 0 (local.get 0)) ${body} (drop)) (i32.const 0)`))).toBe(false);
    });
  }

  const simdBody = `(local $v v128)
      (local.set $v (v128.load offset=16 (local.get 0)))
      (v128.store (i32.const 32) (i32x4.add (local.get $v) (v128.const i32x4 1 2 3 4)))
      (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
      (local.set $v (f64x2.replace_lane 1 (local.get $v) (f64.const 2.5)))
      (local.set $v (v128.load8_lane 3 (i32.const 0) (local.get $v)))
      (v128.store64_lane 1 (i32.const 8) (local.get $v))
      (local.set $v (v128.load32_zero (i32.const 4)))
      (local.set $v (i32x4.dot_i16x8_s (local.get $v) (f64x2.promote_low_f32x4 (local.get $v))))
      (drop (v128.any_true (local.get $v)))
      (i8x16.extract_lane_s 15 (local.get $v))`;

  it('SIMD is read - loads and stores (whole, lane, zero-extended), constants, shuffles, lanes and plain vector ops: memory and globals only', () => {
    const simd = withBody(simdBody);
    expect(() => new WebAssembly.Module(simd as BufferSource)).not.toThrow();
    expect(onlyMemoryAndGlobalsChange(simd)).toBe(true);
  });

  it('SIMD is read - a table.set after every SIMD form is still found', () => {
    const simd = withBody(`${simdBody} (drop) (table.set $t (i32.const 0) (ref.null func)) (i32.const 0)`);
    expect(() => new WebAssembly.Module(simd as BufferSource)).not.toThrow();
    expect(onlyMemoryAndGlobalsChange(simd)).toBe(false);
  });

  it('unknown counts as a change - an opcode this reader does not decode (atomics) makes the module count as changing its instance', () => {
    const atomic = wat(`(module (memory 1 1 shared) (func (export "run") (result i32) (i32.atomic.load (i32.const 0))))`);
    expect(() => new WebAssembly.Module(atomic as BufferSource)).not.toThrow();
    expect(onlyMemoryAndGlobalsChange(atomic)).toBe(false);
  });

  it('a cut module - a code section that ends inside a body counts as a change, not as none', () => {
    // The code section last (no data after it): the cut falls inside the function's body.
    const bytes = wat('(module (func (export "f") (result i32) (i32.const 1)))');
    expect(onlyMemoryAndGlobalsChange(bytes)).toBe(true);
    expect(onlyMemoryAndGlobalsChange(bytes.subarray(0, bytes.length - 1))).toBe(false);
  });

  it('the guests - every built function is read to its end (a mis-decoded body would not end where its size says)', () => {
    const dir = join(import.meta.dirname, '../../functions/build');
    for (const name of ['pattern', 'echo', 'counter', 'render', 'quant', 'blast']) {
      const bytes = new Uint8Array(readFileSync(join(dir, `${name}.wasm`)));
      expect(onlyMemoryAndGlobalsChange(bytes), name).toBe(true);
    }
  });
});
