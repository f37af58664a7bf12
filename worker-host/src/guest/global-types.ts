/**
 * The value types of a module's globals, read from its global section: a
 * snapshot descriptor names each mutable global's type (JavaScript cannot ask
 * a WebAssembly.Global for it on Node 20), and a global adopted from another
 * host must be set with the right type.
 */
import { inspectModule, type GlobalType } from '@flurry/core';

const NUMBER_TYPES: Record<number, GlobalType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };

/** Opcodes a constant expression may hold, with the size of their immediate in bytes ('leb': one LEB128). */
const CONST_OPS: Record<number, number | 'leb'> = {
  0x41: 'leb', // i32.const
  0x42: 'leb', // i64.const
  0x43: 4, // f32.const
  0x44: 8, // f64.const
  0x23: 'leb', // global.get
  0xd0: 'leb', // ref.null heaptype
  0xd2: 'leb', // ref.func
  0x6a: 0, // i32.add, i32.sub, i32.mul (extended constant expressions)
  0x6b: 0,
  0x6c: 0,
  0x7c: 0, // i64.add, i64.sub, i64.mul
  0x7d: 0,
  0x7e: 0,
};

class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('module truncated');
    return this.bytes[this.pos++];
  }

  leb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      if (shift < 32) result |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) return result >>> 0;
    }
  }
}

/**
 * Type of every global the module defines or imports, by global index;
 * undefined for types a snapshot cannot describe (references, v128) and for
 * globals after a constant expression this reader does not know.
 */
export function globalTypes(bytes: Uint8Array): (GlobalType | undefined)[] {
  const types: (GlobalType | undefined)[] = [];
  // Imported globals come first in the index space; Flurry provides none, so their types do not matter.
  for (const i of inspectModule(bytes).imports) if (i.kind === 'global') types.push(undefined);
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.leb();
    const end = r.pos + size;
    if (id !== 6) {
      r.pos = end;
      continue;
    }
    for (let n = r.leb(); n > 0; n--) {
      const valueType = r.byte();
      if (valueType === 0x63 || valueType === 0x64) r.leb(); // (ref null? heaptype)
      types.push(NUMBER_TYPES[valueType]);
      r.byte(); // mutability
      if (!skipConstExpr(r)) return types;
    }
    break;
  }
  return types;
}

/** Moves past a constant expression; false at an opcode this reader does not know. */
function skipConstExpr(r: Reader): boolean {
  for (;;) {
    const op = r.byte();
    if (op === 0x0b) return true;
    const immediate = CONST_OPS[op];
    if (immediate === undefined) return false;
    if (immediate === 'leb') r.leb();
    else r.pos += immediate;
  }
}
