/** Bounds-checked access to a guest's linear memory, whose buffer changes whenever it grows. */
import { GuestFailure } from './guest-failure.js';

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

export class GuestMemory {
  private memory: WebAssembly.Memory | undefined;
  private view = EMPTY;
  private data = new DataView(this.view.buffer);
  /**
   * The memory as a Buffer, made on the first text written (Buffer.write encodes straight into it). Not `view`:
   * a Buffer's `slice` is a view, where callers of range() expect a Uint8Array's copy.
   */
  private textView: Buffer | undefined;

  /** Points the imports at an instance's memory (undefined while instantiating and between calls). */
  attach(memory: WebAssembly.Memory | undefined): void {
    this.memory = memory;
    // Views are made on first use: a call that reads no memory through an import makes none.
    this.view = EMPTY;
    this.textView = undefined;
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
      this.textView = undefined;
      this.data = new DataView(memory.buffer);
    }
    return this.view;
  }

  /** Bytes [ptr, ptr + len); pointers and lengths are i32s read as unsigned. Traps when out of bounds. */
  range(ptr: number, len: number): Uint8Array {
    const start = this.check(ptr, len);
    return this.view.subarray(start, start + (len >>> 0));
  }

  /** The offset of [ptr, ptr + len) once it is known to be inside the memory (no view made). Traps when out of bounds. */
  private check(ptr: number, len: number): number {
    const bytes = this.bytes();
    const start = ptr >>> 0;
    if (start + (len >>> 0) > bytes.length) throw new GuestFailure('guest_trap', 'memory access out of bounds');
    return start;
  }

  // Each checks before it reads `view` or `data`: the check is what makes them current.

  u32(ptr: number): number {
    const at = this.check(ptr, 4);
    return this.data.getUint32(at, true);
  }

  setU32(ptr: number, value: number): void {
    const at = this.check(ptr, 4);
    this.data.setUint32(at, value, true);
  }

  setU64(ptr: number, value: bigint): void {
    const at = this.check(ptr, 8);
    this.data.setBigUint64(at, value, true);
  }

  utf8(ptr: number, len: number): string {
    return utf8.decode(this.range(ptr, len));
  }

  /**
   * Writes at most `cap` bytes of `text`'s UTF-8 to `ptr` and returns its full length (the getter convention).
   * Encoded straight into the memory when it fits; cut short (rare: the guest asks again with room), the first
   * `cap` bytes of its encoding, a character cut in two included.
   */
  writeText(ptr: number, cap: number, text: string): number {
    const length = Buffer.byteLength(text, 'utf8');
    const room = cap >>> 0;
    if (length <= room) {
      if (length > 0) {
        const at = this.check(ptr, length);
        this.textView ??= Buffer.from(this.view.buffer);
        this.textView.write(text, at, length, 'utf8');
      }
    } else if (room > 0) this.range(ptr, room).set(encoder.encode(text).subarray(0, room));
    return length;
  }
}

const EMPTY = new Uint8Array(0);
