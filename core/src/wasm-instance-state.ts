/**
 * Whether a module's code can change any state of its instance other than
 * its linear memory and its globals: its tables (table.set, table.grow,
 * table.fill, table.copy, table.init) or its segments (data.drop,
 * elem.drop). When it cannot, an instance of the clone variant that ran a
 * clone is, once a snapshot is mapped over its memory and every mutable
 * global is set (what every fork does to an instance), in the same state as
 * one made fresh: a guest thread may give it to the next fork instead of
 * instantiating (worker-host's memory-pool.ts).
 *
 * The answer is sound, not complete: every function body is decoded
 * instruction by instruction, and a body with an opcode this reader does not
 * know (atomics, exception handling, GC and typed references), or that does
 * not decode cleanly, counts as changing its instance. Fixed-width SIMD is
 * read (blast's search is vectorised); no SIMD instruction touches a table or
 * a segment, so it only has to be stepped over.
 */
import { readSections, WasmFormatError, WasmReader } from './wasm-module.js';

/** The code section's id (the binary format's). */
const CODE_SECTION = 10;

/** The 0xFC-prefixed opcodes that change an instance's tables or segments. */
const MUTATING_FC = new Set([9 /* data.drop */, 12 /* table.init */, 13 /* elem.drop */, 14 /* table.copy */, 15 /* table.grow */, 17 /* table.fill */]);
/** Value types of one byte: i32 i64 f32 f64 v128 funcref externref. */
const VALUE_TYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/** An opcode or type this reader does not decode: the module counts as changing its instance. */
class Unknown extends Error {}

/** True when no function of `bytes` (a valid module) can change its instance's tables or segments. */
export function onlyMemoryAndGlobalsChange(bytes: Uint8Array): boolean {
  try {
    const code = readSections(bytes).find((s) => s.id === CODE_SECTION);
    return !code || codeKeepsInstance(new WasmReader(bytes, code.start, code.end));
  } catch (err) {
    if (err instanceof Unknown || err instanceof WasmFormatError) return false;
    throw err;
  }
}

function codeKeepsInstance(r: WasmReader): boolean {
  const count = r.u32();
  for (let f = 0; f < count; f++) {
    const size = r.u32();
    const end = r.pos + size;
    const locals = r.u32();
    for (let i = 0; i < locals; i++) {
      r.u32();
      if (!VALUE_TYPES.has(r.byte())) throw new Unknown('local of a type this reader does not know');
    }
    while (r.pos < end) if (!instructionKeepsInstance(r)) return false;
    if (r.pos !== end) throw new Unknown('body does not end where its size says');
  }
  return true;
}

/** Reads one instruction; false if it changes a table or a segment. */
function instructionKeepsInstance(r: WasmReader): boolean {
  const op = r.byte();
  if (op === 0x26) return false; // table.set
  if ((op >= 0x45 && op <= 0xc4) || op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || op === 0xd1) return true;
  switch (op) {
    case 0x02: case 0x03: case 0x04: // block, loop, if: a block type
      return blockType(r);
    case 0x0c: case 0x0d: // br, br_if
    case 0x10: case 0x12: // call, return_call
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: // local.get/set/tee, global.get/set
    case 0x25: // table.get
    case 0x3f: case 0x40: // memory.size, memory.grow
    case 0xd2: // ref.func
      r.u32();
      return true;
    case 0x0e: { // br_table
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      return true;
    }
    case 0x11: case 0x13: // call_indirect, return_call_indirect
      r.u32();
      r.u32();
      return true;
    case 0x1c: { // select with types
      const n = r.u32();
      for (let i = 0; i < n; i++) if (!VALUE_TYPES.has(r.byte())) throw new Unknown('select type');
      return true;
    }
    case 0x41: case 0x42: // i32.const, i64.const
      r.skipLeb();
      return true;
    case 0x43: // f32.const
      r.skip(4);
      return true;
    case 0x44: // f64.const
      r.skip(8);
      return true;
    case 0xd0: // ref.null
      if (!VALUE_TYPES.has(r.byte())) throw new Unknown('ref.null of a heap type');
      return true;
    case 0xfc:
      return miscKeepsInstance(r);
    case 0xfd:
      return simdKeepsInstance(r);
  }
  if (op >= 0x28 && op <= 0x3e) return memarg(r); // loads and stores
  throw new Unknown(`opcode 0x${op.toString(16)}`);
}

function blockType(r: WasmReader): boolean {
  const b = r.byte();
  if (b === 0x40 || VALUE_TYPES.has(b)) return true;
  // A type index, as a signed LEB128 (s33): this byte was its first.
  r.pos--;
  r.skipLeb();
  return true;
}

function memarg(r: WasmReader): boolean {
  const align = r.u32();
  // Multi-memory: bit 6 of the alignment says a memory index follows.
  if (align & 0x40) r.u32();
  r.u32();
  return true;
}

function miscKeepsInstance(r: WasmReader): boolean {
  const sub = r.u32();
  if (MUTATING_FC.has(sub)) return false;
  if (sub <= 7) return true; // saturating truncations
  switch (sub) {
    case 8: // memory.init: data index, memory
    case 10: // memory.copy: two memories
      r.u32();
      r.u32();
      return true;
    case 11: // memory.fill
    case 16: // table.size
      r.u32();
      return true;
  }
  throw new Unknown(`opcode 0xfc ${sub}`);
}

/**
 * Steps over one fixed-width SIMD instruction (the 0xFD prefix): none changes
 * a table or a segment; only their immediates differ (the SIMD proposal's
 * binary table: loads and stores take a memarg, the lane ops a lane byte).
 */
function simdKeepsInstance(r: WasmReader): boolean {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) return memarg(r); // v128.load*, v128.store, load32/64_zero
  if (sub === 12 || sub === 13) { // v128.const, i8x16.shuffle: 16 bytes
    r.skip(16);
    return true;
  }
  if (sub >= 21 && sub <= 34) { // extract_lane and replace_lane: a lane index
    r.byte();
    return true;
  }
  if (sub >= 84 && sub <= 91) { // load and store of one lane: a memarg, then a lane index
    memarg(r);
    r.byte();
    return true;
  }
  if ((sub >= 14 && sub <= 20) || (sub >= 35 && sub <= 83) || (sub >= 94 && sub <= 255)) return true; // no immediates
  throw new Unknown(`opcode 0xfd ${sub}`);
}
