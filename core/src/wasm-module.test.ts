import { describe, expect, it } from 'vitest';
import { CLONE_MEMORY_IMPORT, GLOBAL_EXPORT_PREFIX, inspectModule, rewriteForSnapshot, validateFunctionModule, WasmFormatError } from './wasm-module.js';
import { wat } from '../../test/helpers/wat.js';

const GUEST = wat(`(module
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1 4)
  (global $counter (mut i32) (i32.const 7))
  (global $k i32 (i32.const 3))
  (global $f (mut f64) (f64.const 1.5))
  (data (i32.const 16) "hello")
  (func $start (global.set $counter (i32.const 41)))
  (start $start)
  (func (export "handle") (result i32) (call $out (i32.const 16) (i32.const 5)) (i32.const 0)))`);

describe('wasm-module', () => {
  it('inspect - reads memory limits, exports, mutable globals, start and data', () => {
    const info = inspectModule(GUEST);
    expect(info.memory).toEqual({ initial: 1, maximum: 4, shared: false, memory64: false });
    expect(info.exports.map((e) => e.name).sort()).toEqual(['handle', 'memory']);
    expect(info.imports).toEqual([{ module: 'flurry', name: 'output_write', kind: 'function' }]);
    expect(info.mutableGlobals).toEqual([0, 2]);
    expect(info.hasStart).toBe(true);
    expect(info.dataSegments).toBe(1);
  });

  it('inspect - bad magic, bad version and truncation are named', () => {
    expect(() => inspectModule(new TextEncoder().encode('hello world!'))).toThrow(/bad magic/);
    const v2 = GUEST.slice();
    v2[4] = 2;
    expect(() => inspectModule(v2)).toThrow(/version 2/);
    expect(() => inspectModule(GUEST.subarray(0, GUEST.length - 3))).toThrow(WasmFormatError);
  });

  it('rewrite - parent exports every mutable global and keeps data and start', async () => {
    const { parent, globalExports } = rewriteForSnapshot(GUEST);
    expect(globalExports).toEqual([`${GLOBAL_EXPORT_PREFIX}0`, `${GLOBAL_EXPORT_PREFIX}2`]);
    let written = '';
    const { instance } = await WebAssembly.instantiate(parent as Uint8Array<ArrayBuffer>, {
      flurry: { output_write: (p: number, l: number) => { written = new TextDecoder().decode(new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer, p, l)); } },
    });
    expect((instance.exports[`${GLOBAL_EXPORT_PREFIX}0`] as WebAssembly.Global).value).toBe(41); // start ran
    expect((instance.exports[`${GLOBAL_EXPORT_PREFIX}2`] as WebAssembly.Global).value).toBe(1.5);
    (instance.exports.handle as () => number)();
    expect(written).toBe('hello');
  });

  it('rewrite - clone runs no start and writes no data, and its globals can be set', async () => {
    const { clone } = rewriteForSnapshot(GUEST);
    const info = inspectModule(clone);
    expect(info.hasStart).toBe(false);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const { instance } = await WebAssembly.instantiate(clone as Uint8Array<ArrayBuffer>, { flurry: { output_write: () => {} }, [CLONE_MEMORY_IMPORT.module]: { memory } });
    const mem = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
    expect(mem.subarray(16, 21).every((b) => b === 0)).toBe(true);
    const g = instance.exports[`${GLOBAL_EXPORT_PREFIX}0`] as WebAssembly.Global;
    expect(g.value).toBe(7); // initialiser, not the start function's 41
    g.value = 99;
    expect(g.value).toBe(99);
  });

  it('rewrite - clone imports its memory with the same limits, at index 0, and exports it as before', async () => {
    const { clone, cloneImportsMemory } = rewriteForSnapshot(GUEST);
    expect(cloneImportsMemory).toBe(true);
    const info = inspectModule(clone);
    expect(info.memoryImported).toBe(true);
    expect(info.memory).toEqual({ initial: 1, maximum: 4, shared: false, memory64: false });
    expect(info.imports).toEqual([{ module: 'flurry', name: 'output_write', kind: 'function' }, { ...CLONE_MEMORY_IMPORT, kind: 'memory' }]);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 4 });
    new Uint8Array(memory.buffer)[16] = 104; // 'h', as the snapshot would hold it
    let written = '';
    const { instance } = await WebAssembly.instantiate(clone as Uint8Array<ArrayBuffer>, {
      flurry: { output_write: (p: number, l: number) => { written = new TextDecoder().decode(new Uint8Array(memory.buffer, p, l)); } },
      [CLONE_MEMORY_IMPORT.module]: { memory },
    });
    expect(instance.exports.memory).toBe(memory);
    (instance.exports.handle as () => number)();
    expect(written).toBe('h\0\0\0\0');
    // A memory whose maximum passes the declared one is refused: a clone can never grow past its parent's limit.
    await expect(WebAssembly.instantiate(clone as Uint8Array<ArrayBuffer>, { flurry: { output_write: () => {} }, [CLONE_MEMORY_IMPORT.module]: { memory: new WebAssembly.Memory({ initial: 1, maximum: 5 }) } })).rejects.toThrow();
  });

  it('rewrite - a module without imports gets an import section for its clone; a shared memory stays defined', () => {
    const bare = wat('(module (memory (export "memory") 1 2) (func (export "run") (result i32) (i32.const 0)))');
    const r = rewriteForSnapshot(bare);
    expect(r.cloneImportsMemory).toBe(true);
    expect(WebAssembly.validate(r.clone as BufferSource)).toBe(true);
    expect(inspectModule(r.clone).imports).toEqual([{ ...CLONE_MEMORY_IMPORT, kind: 'memory' }]);
    const shared = rewriteForSnapshot(wat('(module (memory (export "memory") 1 2 shared))'));
    expect(shared.cloneImportsMemory).toBe(false);
    expect(inspectModule(shared.clone).memoryImported).toBe(false);
  });

  it('rewrite - a module without an export section gets one', () => {
    const bare = wat('(module (memory 1 1) (global (mut i32) (i32.const 1)))');
    const { parent } = rewriteForSnapshot(bare);
    expect(inspectModule(parent).exports).toEqual([{ name: `${GLOBAL_EXPORT_PREFIX}0`, kind: 'global', index: 0 }]);
    expect(WebAssembly.validate(parent as BufferSource)).toBe(true);
  });

  it('validate - accepts a function module and lists its entry points', async () => {
    const s = await validateFunctionModule(GUEST, 1024 ** 3);
    expect(s).toEqual({ exports: ['handle'], memory: { initialPages: 1, maximumPages: 4 } });
  });

  it('validate - each refusal says which rule', async () => {
    const cap = 1024 ** 3;
    await expect(validateFunctionModule(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), cap)).rejects.toThrow(/not a WebAssembly module/);
    await expect(validateFunctionModule(wat('(module (memory 1 2) (func (export "handle")))'), cap)).rejects.toThrow(/does not export its memory/);
    await expect(validateFunctionModule(wat('(module (memory (export "memory") 1) (func (export "handle")))'), cap)).rejects.toThrow(/declares no maximum/);
    await expect(validateFunctionModule(wat('(module (memory (export "memory") 1 20000) (func (export "handle")))'), cap)).rejects.toThrow(/exceeds the cap of 16384 pages/);
    await expect(validateFunctionModule(wat('(module (memory (export "memory") 1 2) (func (export "other")))'), cap)).rejects.toThrow(/none of the entry points/);
    await expect(validateFunctionModule(wat('(module (memory (export "memory") 1 2) (func (export "_start")))'), cap)).rejects.toThrow(/WASI command/);
    await expect(validateFunctionModule(wat('(module (import "env" "memory" (memory 1 2)) (export "memory" (memory 0)) (func (export "handle")))'), cap)).rejects.toThrow(/imports its memory/);
  });
});
