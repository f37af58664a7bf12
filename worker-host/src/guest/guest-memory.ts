/** Bounds-checked access to a guest's linear memory, whose buffer changes whenever it grows. */
import { GuestFailure } from './guest-failure.js';

const utf8 = new TextDecoder();

export class GuestMemory {
  private memory: WebAssembly.Memory | undefined;
  private view = new Uint8Array(0);
  private data = new DataView(this.view.buffer);

  /** Points the imports at an instance's memory (undefined while instantiating and between calls). */
  attach(memory: WebAssembly.Memory | undefined): void {
    this.memory = memory;
    this.view = new Uint8Array(0);
    this.data = new DataView(this.view.buffer);
  }

  get attached(): boolean {
    return this.memory !== undefined;
  }

  /** The whole memory; re-viewed after a grow detached the old buffer. */
  bytes(): Uint8Array {
    const memory = this.memory;
    // A start function runs inside instantiation, before the exports (and so the memory) exist.
    if (!memory) throw new GuestFailure('guest_trap', 'a host import that needs memory was called before the module\'s memory was available (from a start function?); move that code into init');
    if (this.view.buffer !== memory.buffer) {
      this.view = new Uint8Array(memory.buffer);
      this.data = new DataView(memory.buffer);
    }
    return this.view;
  }

  /** Bytes [ptr, ptr + len); pointers and lengths are i32s read as unsigned. Traps when out of bounds. */
  range(ptr: number, len: number): Uint8Array {
    const bytes = this.bytes();
    const start = ptr >>> 0;
    const end = start + (len >>> 0);
    if (end > bytes.length) throw new GuestFailure('guest_trap', 'memory access out of bounds');
    return bytes.subarray(start, end);
  }

  u32(ptr: number): number {
    this.range(ptr, 4);
    return this.data.getUint32(ptr >>> 0, true);
  }

  setU32(ptr: number, value: number): void {
    this.range(ptr, 4);
    this.data.setUint32(ptr >>> 0, value, true);
  }

  setU64(ptr: number, value: bigint): void {
    this.range(ptr, 8);
    this.data.setBigUint64(ptr >>> 0, value, true);
  }

  utf8(ptr: number, len: number): string {
    return utf8.decode(this.range(ptr, len));
  }

  /** Copies at most `cap` bytes of `value` to `ptr` and returns the full length (the getter convention). */
  writeCapped(ptr: number, cap: number, value: Uint8Array): number {
    const n = Math.min(cap >>> 0, value.length);
    if (n > 0) this.range(ptr, n).set(n === value.length ? value : value.subarray(0, n));
    return value.length;
  }
}
