/**
 * The snapshot descriptor: everything a host needs to make clones of a warm
 * parent, except the memory itself, which is fetched lazily by chunk. It is
 * what a fork sends to every host, so it stays small: a 1 GiB memory has a
 * 32 KiB zero-page bitmap and 128 KiB of chunk hashes.
 *
 *   offset  size  field
 *   ------  ----  --------------------------------------------------------
 *        0     4  magic "FLSN"
 *        4     2  format version (u16 LE), currently 1
 *        6     2  flags (u16 LE), 0
 *        8     4  body length B (u32 LE)
 *       12     B  body: msgpack of DescriptorBody (below)
 *     12+B    32  SHA-256 of the body
 *
 * Memory is addressed in pages of 4 KiB (the kernel's page, what the pager
 * faults on) and moved and verified in chunks of `chunkPages` pages: one hash
 * per chunk, one NATS message per chunk run. A chunk whose pages are all zero
 * is never sent; the zero bitmap has one bit per page (bit i of byte i>>3,
 * least significant first).
 *
 * Failure cases, each with its own message: bad magic, unknown version,
 * truncated, body checksum mismatch, malformed body, inconsistent sizes.
 */
import { createHash } from 'node:crypto';
import { encode } from './codec.js';
import { decodeOrRefuse } from './checked-decode.js';
import type { SnapshotDescriptor } from './protocol.js';
import { PAGE_SIZE, WASM_PAGE_SIZE } from './page-sizes.js';

export const SNAPSHOT_MAGIC = 'FLSN';
export const SNAPSHOT_VERSION = 1;
/** 16 pages = 64 KiB: NATS moves 64-256 KiB messages fastest on these machines. */
export const DEFAULT_CHUNK_PAGES = 16;
const HASH_BYTES = 8;
const HEADER = 12;
const TRAILER = 32;

export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

export function chunkCount(d: Pick<SnapshotDescriptor, 'memoryBytes' | 'pageSize' | 'chunkPages'>): number {
  return Math.ceil(d.memoryBytes / (d.pageSize * d.chunkPages));
}

export function pageCount(d: Pick<SnapshotDescriptor, 'memoryBytes' | 'pageSize'>): number {
  return Math.ceil(d.memoryBytes / d.pageSize);
}

export function isZeroPage(d: Pick<SnapshotDescriptor, 'zeroPages'>, page: number): boolean {
  return (d.zeroPages[page >> 3] & (1 << (page & 7))) !== 0;
}

/** True when every page of the chunk is zero: such a chunk never crosses the network. */
export function isZeroChunk(d: SnapshotDescriptor, chunk: number): boolean {
  const first = chunk * d.chunkPages;
  const last = Math.min(first + d.chunkPages, pageCount(d));
  for (let p = first; p < last; p++) if (!isZeroPage(d, p)) return false;
  return true;
}

export function chunkHash(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest().subarray(0, HASH_BYTES));
}

/** Checks a chunk that arrived against the descriptor; never run a clone on a page that fails this. */
export function verifyChunk(d: SnapshotDescriptor, chunk: number, bytes: Uint8Array): boolean {
  const expected = d.chunkHashes.subarray(chunk * HASH_BYTES, (chunk + 1) * HASH_BYTES);
  const actual = chunkHash(bytes);
  for (let i = 0; i < HASH_BYTES; i++) if (expected[i] !== actual[i]) return false;
  return true;
}

/** The byte range of a chunk within the memory (the last chunk may be short). */
export function chunkRange(d: SnapshotDescriptor, chunk: number): { start: number; end: number } {
  const size = d.pageSize * d.chunkPages;
  return { start: chunk * size, end: Math.min((chunk + 1) * size, d.memoryBytes) };
}

/** Computes the zero bitmap and chunk hashes of a memory image. */
export function describeMemory(memory: Uint8Array, pageSize = PAGE_SIZE, chunkPages = DEFAULT_CHUNK_PAGES): { zeroPages: Uint8Array; chunkHashes: Uint8Array } {
  const pages = Math.ceil(memory.length / pageSize);
  const zeroPages = new Uint8Array(Math.ceil(pages / 8));
  const words = new BigUint64Array(memory.buffer, memory.byteOffset, Math.floor(memory.length / 8));
  const wordsPerPage = pageSize / 8;
  for (let p = 0; p < pages; p++) {
    let zero = true;
    const end = Math.min((p + 1) * wordsPerPage, words.length);
    for (let w = p * wordsPerPage; w < end; w++) {
      if (words[w] !== 0n) { zero = false; break; }
    }
    if (zero) zeroPages[p >> 3] |= 1 << (p & 7);
  }
  const chunkSize = pageSize * chunkPages;
  const chunks = Math.ceil(memory.length / chunkSize);
  const chunkHashes = new Uint8Array(chunks * HASH_BYTES);
  for (let c = 0; c < chunks; c++) chunkHashes.set(chunkHash(memory.subarray(c * chunkSize, Math.min((c + 1) * chunkSize, memory.length))), c * HASH_BYTES);
  return { zeroPages, chunkHashes };
}

/**
 * describeMemory over a memory read piece by piece (a memory file, say), so a
 * large snapshot is never copied whole. Pieces are 1 MiB: a whole number of
 * pages, chunks and bitmap bytes.
 */
export function describeMemoryByPieces(read: (offset: number, length: number) => Uint8Array, byteLength: number, pageSize = PAGE_SIZE, chunkPages = DEFAULT_CHUNK_PAGES): { zeroPages: Uint8Array; chunkHashes: Uint8Array } {
  const piece = 1024 * 1024;
  const pages = Math.ceil(byteLength / pageSize);
  const zeroPages = new Uint8Array(Math.ceil(pages / 8));
  const chunkHashes = new Uint8Array(Math.ceil(byteLength / (pageSize * chunkPages)) * HASH_BYTES);
  for (let off = 0; off < byteLength; off += piece) {
    const part = describeMemory(read(off, Math.min(piece, byteLength - off)), pageSize, chunkPages);
    zeroPages.set(part.zeroPages, off / pageSize / 8);
    chunkHashes.set(part.chunkHashes, (off / (pageSize * chunkPages)) * HASH_BYTES);
  }
  return { zeroPages, chunkHashes };
}

type DescriptorBody = Omit<SnapshotDescriptor, never>;

export function encodeDescriptor(d: SnapshotDescriptor): Uint8Array {
  const body = encode(d satisfies DescriptorBody);
  const out = new Uint8Array(HEADER + body.length + TRAILER);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(SNAPSHOT_MAGIC), 0);
  view.setUint16(4, SNAPSHOT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, body.length, true);
  out.set(body, HEADER);
  out.set(createHash('sha256').update(body).digest(), HEADER + body.length);
  return out;
}

export function decodeDescriptor(bytes: Uint8Array): SnapshotDescriptor {
  if (bytes.length < HEADER + TRAILER) throw new SnapshotFormatError(`snapshot descriptor truncated: ${bytes.length} bytes`);
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== SNAPSHOT_MAGIC) throw new SnapshotFormatError('not a snapshot descriptor: bad magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotFormatError(`snapshot descriptor version ${version} is not supported (this host reads version ${SNAPSHOT_VERSION})`);
  const bodyLength = view.getUint32(8, true);
  if (bytes.length !== HEADER + bodyLength + TRAILER) throw new SnapshotFormatError(`snapshot descriptor truncated: body of ${bodyLength} bytes announced, ${bytes.length - HEADER - TRAILER} present`);
  const body = bytes.subarray(HEADER, HEADER + bodyLength);
  const digest = createHash('sha256').update(body).digest();
  const stored = bytes.subarray(HEADER + bodyLength);
  if (!digest.equals(stored)) throw new SnapshotFormatError('snapshot descriptor checksum mismatch: the descriptor was altered or corrupted');
  let d: SnapshotDescriptor;
  try {
    d = decodeOrRefuse('SnapshotDescriptor', body);
  } catch (err) {
    throw new SnapshotFormatError(`snapshot descriptor body is malformed: ${(err as Error).message}`);
  }
  checkConsistent(d);
  return { ...d, zeroPages: new Uint8Array(d.zeroPages), chunkHashes: new Uint8Array(d.chunkHashes) };
}

function checkConsistent(d: SnapshotDescriptor): void {
  if (d.pageSize !== PAGE_SIZE) throw new SnapshotFormatError(`snapshot page size ${d.pageSize} is not supported`);
  if (d.memoryBytes % WASM_PAGE_SIZE !== 0) throw new SnapshotFormatError(`snapshot memory size ${d.memoryBytes} is not a whole number of wasm pages`);
  if (d.memoryBytes / WASM_PAGE_SIZE > d.maximumPages) throw new SnapshotFormatError('snapshot memory is larger than its maximum');
  if (d.zeroPages.length !== Math.ceil(pageCount(d) / 8)) throw new SnapshotFormatError('snapshot zero-page bitmap has the wrong size');
  if (d.chunkHashes.length !== chunkCount(d) * HASH_BYTES) throw new SnapshotFormatError('snapshot chunk hashes have the wrong size');
}

/**
 * The descriptor of a cold-boot job (`boot: "cold"`): no memory and no page
 * server; it only names the module, so that fork requests in `cold` mode
 * boot every clone from it. `bootId` plays the snapshot id's part (keys, cancel).
 */
export function coldBootDescriptor(d: { bootId: string; tenant: string; function: string; moduleDigest: string }): SnapshotDescriptor {
  return {
    snapshotId: d.bootId, tenant: d.tenant, function: d.function, moduleDigest: d.moduleDigest,
    memoryBytes: 0, maximumPages: 0, pageSize: PAGE_SIZE, chunkPages: DEFAULT_CHUNK_PAGES,
    globals: [], zeroPages: new Uint8Array(0), chunkHashes: new Uint8Array(0), serverHostId: '', createdAt: Date.now(),
  };
}
