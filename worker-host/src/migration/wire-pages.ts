/**
 * How pre-copy pages and globals travel in ReceiveSteps: page numbers as
 * bytes, page bytes in chunks under the broker's max_payload, globals as
 * wire values (an i64 as a decimal string).
 */
import { PAGE_SIZE, type WireGlobal } from '@flurry/core';
import type { GlobalValue } from '../guest/instance.js';

/** Page bytes per apply message at most (messages stay at about 1 MiB). */
export const CHUNK_BYTES = 1024 * 1024 - 64 * 1024;

export function globalsToWire(g: Record<string, GlobalValue>): Record<string, WireGlobal> {
  return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, typeof v === 'bigint' ? { b: v.toString() } : { n: v }]));
}

export function globalsFromWire(g: Record<string, WireGlobal>): Record<string, GlobalValue> {
  return Object.fromEntries(Object.entries(g).map(([k, v]) => [k, 'b' in v ? BigInt(v.b) : v.n]));
}

export function u32ToBytes(a: Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Page numbers as bytes (a view of u32s, aligned) seen as u32s again, not copied. */
export function u32View(b: Uint8Array): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function bytesToU32(b: Uint8Array): Uint32Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Uint32Array(copy.buffer);
}

export interface Chunk {
  pages: Uint8Array;
  bytes: Uint8Array;
}

/** Pages and their bytes in chunks of at most CHUNK_BYTES of page bytes. */
export function chunked(pages: Uint32Array, bytes: Uint8Array): Chunk[] {
  const pageBytes = pages.length > 0 ? bytes.length / pages.length : PAGE_SIZE;
  const per = Math.max(1, Math.floor(CHUNK_BYTES / pageBytes));
  const chunks: Chunk[] = [];
  for (let i = 0; i < pages.length; i += per) {
    const end = Math.min(pages.length, i + per);
    chunks.push({ pages: u32ToBytes(pages.subarray(i, end)), bytes: bytes.subarray(i * pageBytes, end * pageBytes) });
  }
  return chunks;
}
