/** Wasm memories made from a snapshot's memory file: copy-on-write mappings, or a copy where mapping is not wanted. */
import { WASM_PAGE_SIZE } from '@flurry/core/basics';
import type { NativePager } from './pager.js';

/**
 * Makes `memory` a copy-on-write clone of the snapshot in `fd`: grows it to
 * exactly `byteLength` (it must not be larger) and maps the file over it.
 * Nothing is copied; pages are shared with the file until written.
 */
export function mapSnapshotInto(pager: NativePager, memory: WebAssembly.Memory, fd: number, byteLength: number): void {
  if (byteLength % WASM_PAGE_SIZE !== 0) throw new RangeError(`snapshot length ${byteLength} is not a whole number of wasm pages`);
  const current = memory.buffer.byteLength;
  if (current > byteLength) throw new RangeError(`memory of ${current} bytes is larger than its snapshot of ${byteLength}`);
  if (current < byteLength) memory.grow((byteLength - current) / WASM_PAGE_SIZE);
  pager.mapSnapshotPrivate(memory, fd, byteLength);
}

/** A fresh memory that is a copy-on-write clone of the snapshot in `fd`. */
export function createCowMemory(pager: NativePager, fd: number, byteLength: number, maximumPages: number, shared = false): WebAssembly.Memory {
  const memory = new WebAssembly.Memory({ initial: byteLength / WASM_PAGE_SIZE, maximum: maximumPages, shared } as WebAssembly.MemoryDescriptor);
  pager.mapSnapshotPrivate(memory, fd, byteLength);
  return memory;
}

/** The fallback: a fresh memory filled by copying the snapshot file into it. */
export function createCopiedMemory(pager: NativePager, fd: number, byteLength: number, maximumPages: number, shared = false): WebAssembly.Memory {
  const memory = new WebAssembly.Memory({ initial: byteLength / WASM_PAGE_SIZE, maximum: maximumPages, shared } as WebAssembly.MemoryDescriptor);
  pager.readFdInto(memory, fd, byteLength);
  return memory;
}
