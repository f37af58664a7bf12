/**
 * Reading and rewriting WebAssembly binaries without a toolchain: what a
 * module imports, exports and declares (for validation at deploy), and the
 * two deploy-time rewrites a snapshot needs:
 *
 *   parent variant  every mutable global also exported as `__flurry_global_<i>`,
 *                   so a snapshot can read all of them;
 *   clone variant   the same exports, active data segments made passive and
 *                   the start section removed, because a clone's memory and
 *                   state come from the snapshot, not from the module; and
 *                   its memory imported (`flurry:clone`.`memory`, same limits)
 *                   instead of defined, so that a host can hand each clone a
 *                   memory it made ahead (only a single 32-bit, unshared
 *                   memory is turned into an import).
 *
 * Making segments passive (instead of deleting them) keeps `data.count`,
 * `memory.init` and `data.drop` valid. Parsing touches only section headers
 * and the few sections involved; code is copied untouched, so this takes
 * microseconds, unlike loading binaryen.js (about 1.2 s).
 */
import { concatBytes } from './bytes.js';

export class WasmFormatError extends Error {
  override readonly name = 'WasmFormatError';
}

export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag';
const KINDS: ExternKind[] = ['function', 'table', 'memory', 'global', 'tag'];

export interface MemoryLimits {
  /** In 64 KiB wasm pages. */
  initial: number;
  maximum?: number;
  shared: boolean;
  memory64: boolean;
}

export interface ModuleInfo {
  imports: { module: string; name: string; kind: ExternKind }[];
  exports: { name: string; kind: ExternKind; index: number }[];
  /** The module's own memory (index 0), if it defines one. */
  memory?: MemoryLimits;
  memoryImported: boolean;
  /** Index (in the global index space) of every mutable global the module defines. */
  mutableGlobals: number[];
  importedMutableGlobals: number;
  hasStart: boolean;
  dataSegments: number;
}

/** Prefix of the exports added for mutable globals. */
export const GLOBAL_EXPORT_PREFIX = '__flurry_global_';

export interface Section {
  id: number;
  /** Offset of the section's id byte. */
  header: number;
  /** Offset of the section's payload and its end, in the original bytes. */
  start: number;
  end: number;
}

/** Reads a module's bytes in [start, end): its LEB128 integers and bytes; WasmFormatError past the end (core's readers of a module share it). */
export class WasmReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }
  byte(): number {
    if (this.pos >= this.end) throw new WasmFormatError('unexpected end of module');
    return this.bytes[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new WasmFormatError('malformed LEB128 integer');
  }
  /** Skips a signed LEB128 of any width. */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new WasmFormatError('malformed LEB128 integer');
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw new WasmFormatError('unexpected end of module');
    this.pos += n;
  }
  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + n));
  }
  limits(): MemoryLimits {
    const flags = this.u32();
    if (flags > 7) throw new WasmFormatError(`unknown limits flags ${flags}`);
    const memory64 = (flags & 4) !== 0;
    const initial = memory64 ? (this.skipLeb(), NaN) : this.u32();
    let maximum: number | undefined;
    if (flags & 1) maximum = memory64 ? (this.skipLeb(), NaN) : this.u32();
    return { initial, maximum, shared: (flags & 2) !== 0, memory64 };
  }
  valType(): void {
    const t = this.byte();
    // (ref null ht) / (ref ht) from the function-references and GC proposals carry a heap type.
    if (t === 0x63 || t === 0x64) this.skipLeb();
  }
  /** Skips a constant expression up to and including its `end`. */
  constExpr(): void {
    for (;;) {
      const op = this.byte();
      switch (op) {
        case 0x0b:
          return;
        case 0x41: case 0x42: this.skipLeb(); break; // i32/i64.const
        case 0x43: this.skip(4); break; // f32.const
        case 0x44: this.skip(8); break; // f64.const
        case 0x23: case 0xd2: this.u32(); break; // global.get, ref.func
        case 0xd0: this.valTypeOrHeap(); break; // ref.null
        case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e: break; // extended-const arithmetic
        case 0xfd: if (this.u32() !== 12) throw new WasmFormatError('unsupported SIMD op in constant expression'); this.skip(16); break;
        case 0xfb: this.u32(); this.skipLeb(); break; // GC struct/array ops with a type index (best effort)
        default: throw new WasmFormatError(`unsupported opcode 0x${op.toString(16)} in constant expression`);
      }
    }
  }
  private valTypeOrHeap(): void {
    this.skipLeb();
  }
}

/** The module's sections in order, after checking its magic and version. */
export function readSections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8) throw new WasmFormatError('not a WebAssembly module: too short');
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new WasmFormatError('not a WebAssembly module: bad magic (expected \\0asm)');
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw new WasmFormatError(`unsupported WebAssembly version ${bytes[4]} (expected 1)`);
  const r = new WasmReader(bytes, 8);
  const sections: Section[] = [];
  while (r.pos < bytes.length) {
    const header = r.pos;
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, header, start, end: start + size });
  }
  return sections;
}

/** Reads what a module imports, exports and declares. Throws WasmFormatError on malformed input. */
export function inspectModule(bytes: Uint8Array): ModuleInfo {
  const info: ModuleInfo = { imports: [], exports: [], memoryImported: false, mutableGlobals: [], importedMutableGlobals: 0, hasStart: false, dataSegments: 0 };
  let importedGlobals = 0;
  for (const s of readSections(bytes)) {
    const r = new WasmReader(bytes, s.start, s.end);
    switch (s.id) {
      case 2: {
        for (let n = r.u32(); n > 0; n--) {
          const module = r.name();
          const name = r.name();
          const kindByte = r.byte();
          const kind = KINDS[kindByte];
          if (!kind) throw new WasmFormatError(`unknown import kind 0x${kindByte.toString(16)}`);
          info.imports.push({ module, name, kind });
          if (kind === 'function') r.u32();
          else if (kind === 'table') { r.valType(); r.limits(); }
          else if (kind === 'memory') { info.memoryImported = true; info.memory = r.limits(); }
          else if (kind === 'global') { r.valType(); if (r.byte() === 1) info.importedMutableGlobals++; importedGlobals++; }
          else { r.byte(); r.u32(); }
        }
        break;
      }
      case 5: {
        const n = r.u32();
        if (n > 0 && !info.memory) info.memory = r.limits();
        break;
      }
      case 6: {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          r.valType();
          const mutable = r.byte() === 1;
          r.constExpr();
          if (mutable) info.mutableGlobals.push(importedGlobals + i);
        }
        break;
      }
      case 7: {
        for (let n = r.u32(); n > 0; n--) {
          const name = r.name();
          const kindByte = r.byte();
          const kind = KINDS[kindByte];
          if (!kind) throw new WasmFormatError(`unknown export kind 0x${kindByte.toString(16)}`);
          info.exports.push({ name, kind, index: r.u32() });
        }
        break;
      }
      case 8:
        info.hasStart = true;
        break;
      case 11:
        info.dataSegments = r.u32();
        break;
    }
  }
  return info;
}

// ---- writing ----

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function nameBytes(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...leb(b.length), ...b];
}

function section(id: number, payload: Uint8Array | number[]): Uint8Array {
  const p = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  const head = Uint8Array.from([id, ...leb(p.length)]);
  const out = new Uint8Array(head.length + p.length);
  out.set(head);
  out.set(p, head.length);
  return out;
}

/** Section `id` (a vector: imports, exports) with `added` (`addedCount` entries, encoded) after its own entries. */
function vectorSectionWith(bytes: Uint8Array, id: number, existing: Section | undefined, addedCount: number, added: Uint8Array): Uint8Array {
  let count = 0;
  let body: Uint8Array = new Uint8Array(0);
  if (existing) {
    const r = new WasmReader(bytes, existing.start, existing.end);
    count = r.u32();
    body = bytes.subarray(r.pos, existing.end);
  }
  return section(id, concatBytes([Uint8Array.from(leb(count + addedCount)), body, added]));
}

/** The export section with one `__flurry_global_<i>` export added per mutable global. */
function exportSectionWithGlobals(bytes: Uint8Array, existing: Section | undefined, mutableGlobals: number[]): Uint8Array {
  const added: number[] = [];
  for (const g of mutableGlobals) added.push(...nameBytes(GLOBAL_EXPORT_PREFIX + g), 0x03, ...leb(g));
  return vectorSectionWith(bytes, 7, existing, mutableGlobals.length, Uint8Array.from(added));
}

/** The data section with every active segment made passive (its bytes kept, never written at instantiation). */
function passiveDataSection(bytes: Uint8Array, s: Section): Uint8Array {
  const r = new WasmReader(bytes, s.start, s.end);
  const n = r.u32();
  const parts: Uint8Array[] = [Uint8Array.from(leb(n))];
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    if (flags === 0) r.constExpr();
    else if (flags === 2) { r.u32(); r.constExpr(); }
    else if (flags !== 1) throw new WasmFormatError(`unknown data segment flags ${flags}`);
    const len = r.u32();
    const start = r.pos;
    r.skip(len);
    parts.push(Uint8Array.from([0x01, ...leb(len)]), bytes.subarray(start, start + len));
  }
  return section(11, concatBytes(parts));
}

/** Where a clone variant imports its memory from (see rewriteForSnapshot). */
export const CLONE_MEMORY_IMPORT = { module: 'flurry:clone', name: 'memory' } as const;

/**
 * The import section with the module's own memory appended as an import of
 * CLONE_MEMORY_IMPORT: it keeps index 0, as the module imports no memory.
 */
function importSectionWithMemory(bytes: Uint8Array, existing: Section | undefined, limits: Uint8Array): Uint8Array {
  const entry = Uint8Array.from([...nameBytes(CLONE_MEMORY_IMPORT.module), ...nameBytes(CLONE_MEMORY_IMPORT.name), 0x02, ...limits]);
  return vectorSectionWith(bytes, 2, existing, 1, entry);
}

/** The raw limits of the one memory a memory section defines, when a clone may import it instead (32-bit, unshared). */
function importableMemoryLimits(bytes: Uint8Array, s: Section | undefined): Uint8Array | undefined {
  if (!s) return undefined;
  const r = new WasmReader(bytes, s.start, s.end);
  if (r.u32() !== 1) return undefined;
  const start = r.pos;
  const limits = r.limits();
  if (limits.shared || limits.memory64 || r.pos !== s.end) return undefined;
  return bytes.subarray(start, r.pos);
}

export interface RewrittenModule {
  /** For the warm parent: the original plus global exports. */
  parent: Uint8Array;
  /** For clones: global exports, passive data, no start function, the memory imported where it can be. */
  clone: Uint8Array;
  /** The clone variant imports its memory as CLONE_MEMORY_IMPORT. */
  cloneImportsMemory: boolean;
  /** Export names of the mutable globals, in global index order. */
  globalExports: string[];
}

/** Makes the parent and clone variants of a module (see the module comment). */
export function rewriteForSnapshot(bytes: Uint8Array): RewrittenModule {
  const sections = readSections(bytes);
  const info = inspectModule(bytes);
  const header = bytes.subarray(0, 8);
  const exportSection = sections.find((s) => s.id === 7);
  const newExports = exportSectionWithGlobals(bytes, exportSection, info.mutableGlobals);
  const memoryLimits = info.memoryImported ? undefined : importableMemoryLimits(bytes, sections.find((s) => s.id === 5));
  const cloneImports = memoryLimits && importSectionWithMemory(bytes, sections.find((s) => s.id === 2), memoryLimits);

  const build = (forClone: boolean): Uint8Array => {
    const parts: Uint8Array[] = [header];
    let exportsWritten = false;
    // Sections must stay in canonical order; the export section (7) goes where it was,
    // or before the first section that must follow it.
    // (data count sits between element and code, tags between memory and global).
    const order = (id: number): number => (id === 12 ? 9.5 : id === 13 ? 5.5 : id);
    let importsWritten = !forClone || !cloneImports;
    for (const s of sections) {
      if (!importsWritten && s.id !== 0 && order(s.id) > 2) { parts.push(cloneImports!); importsWritten = true; }
      if (!exportsWritten && s.id !== 0 && order(s.id) > 7) { parts.push(newExports); exportsWritten = true; }
      const raw = bytes.subarray(s.header, s.end);
      if (forClone && cloneImports && s.id === 2) { parts.push(cloneImports); importsWritten = true; continue; }
      if (forClone && cloneImports && s.id === 5) continue;
      if (s.id === 7) { parts.push(newExports); exportsWritten = true; continue; }
      if (forClone && s.id === 8) continue;
      if (forClone && s.id === 11) { parts.push(passiveDataSection(bytes, s)); continue; }
      parts.push(raw);
    }
    if (!importsWritten) parts.push(cloneImports!);
    if (!exportsWritten) parts.push(newExports);
    return concatBytes(parts);
  };
  return { parent: build(false), clone: build(true), cloneImportsMemory: cloneImports !== undefined, globalExports: info.mutableGlobals.map((g) => GLOBAL_EXPORT_PREFIX + g) };
}

/** Entry points the host knows how to call. */
export const ENTRY_POINTS = ['init', 'on_restore', 'handle', 'run', 'run_task', 'reduce'] as const;

export interface FunctionModuleSummary {
  exports: string[];
  memory: { initialPages: number; maximumPages: number };
}

/**
 * Checks that a module can be a Flurry function (see docs/guest-abi.md) and
 * says what is wrong in words a user can act on. Compiles it too, so that
 * invalid code is refused at deploy and not at the first call.
 */
export async function validateFunctionModule(bytes: Uint8Array, maxMemoryBytes: number): Promise<FunctionModuleSummary> {
  let info: ModuleInfo;
  try {
    info = inspectModule(bytes);
  } catch (err) {
    throw new WasmFormatError(err instanceof Error ? err.message : String(err));
  }
  try {
    await WebAssembly.compile(bytes as BufferSource);
  } catch (err) {
    throw new WasmFormatError(`not a valid WebAssembly module: ${err instanceof Error ? err.message : err}`);
  }
  const memExport = info.exports.find((e) => e.name === 'memory' && e.kind === 'memory');
  if (!memExport) throw new WasmFormatError('the module does not export its memory as "memory"');
  if (info.memoryImported) throw new WasmFormatError('the module imports its memory; it must define and export it');
  const mem = info.memory!;
  if (mem.memory64) throw new WasmFormatError('64-bit memories are not supported');
  if (mem.shared) throw new WasmFormatError('shared memories are not supported');
  const capPages = Math.floor(maxMemoryBytes / 65536);
  if (mem.maximum === undefined) throw new WasmFormatError(`the memory declares no maximum; declare one of at most ${capPages} pages (${maxMemoryBytes} bytes)`);
  if (mem.maximum > capPages) throw new WasmFormatError(`the memory's declared maximum of ${mem.maximum} pages exceeds the cap of ${capPages} pages (${maxMemoryBytes} bytes)`);
  const names = new Set(info.exports.filter((e) => e.kind === 'function').map((e) => e.name));
  const entries = ENTRY_POINTS.filter((e) => names.has(e));
  if (!names.has('handle') && !names.has('run') && !names.has('run_task')) {
    const hint = names.has('_start') ? ' (it is a WASI command exporting _start; build a reactor with -mexec-model=reactor)' : '';
    throw new WasmFormatError(`the module exports none of the entry points handle, run or run_task${hint}`);
  }
  if (info.importedMutableGlobals > 0) throw new WasmFormatError('the module imports mutable globals, which cannot be snapshotted');
  return { exports: entries, memory: { initialPages: mem.initial, maximumPages: mem.maximum } };
}
