/**
 * A warm parent's snapshot as the host's descriptor and memory server see it:
 * sizes, typed globals, the zero-page bitmap, and reads of its bytes that
 * never touch guest memory (pread on the memfd, or a view of the bytes).
 */
import { readSync } from 'node:fs';
import { FlurryError, PAGE_SIZE, type GlobalType, type SnapshotGlobal } from '@flurry/core';
import type { Snapshot } from './instance.js';
import { zeroBitmapFromDataRuns } from './page-runs.js';

export interface SnapshotImage {
  /** Linear memory size at snapshot time; a clone's memory is exactly this size. */
  byteLength: number;
  /** The module's declared maximum, in 64 KiB pages. */
  maximumPages: number;
  /** Every mutable global (i64 values as decimal strings), as in the snapshot descriptor. */
  globals: SnapshotGlobal[];
  /** One bit per 4 KiB page, set when the page is all zero (bit p of byte p >> 3, LSB first). */
  zeroPages: Uint8Array;
  /** SHA-256 (hex) of the original module. */
  moduleDigest: string;
  /** The sealed memfd holding the memory (native pager): map it or pread it; the pool closes it on release. */
  memfd?: number;
  /** The memory's bytes (portable pager, or adopted by copy). */
  bytes?: SharedArrayBuffer;
  /**
   * Bytes [offset, offset + length) of the snapshot: a copy read from the
   * memfd, or a view of `bytes` (never written: snapshots are frozen). Safe on
   * the main thread. Throws not_found once the snapshot is released.
   */
  read(offset: number, length: number): Uint8Array;
}

/** Snapshot globals as the descriptor carries them; refuses types it cannot carry. */
export function describeGlobals(globals: Snapshot['globals'], types: Map<string, GlobalType | undefined>): SnapshotGlobal[] {
  return globals.map(({ name, value }) => {
    const type = types.get(name);
    if (!type || value === null) throw new FlurryError('invalid_module', `mutable global ${name} has a type a snapshot descriptor cannot carry`);
    return { name, type, value: type === 'i64' ? BigInt(value).toString() : Number(value) };
  });
}

export function snapshotImage(
  snapshot: Snapshot,
  described: Omit<SnapshotImage, 'byteLength' | 'zeroPages' | 'memfd' | 'bytes' | 'read'>,
  isReleased: () => boolean,
): SnapshotImage {
  const memory = snapshot.memory;
  const { byteLength } = memory;
  const checked = (offset: number, length: number) => {
    if (isReleased()) throw new FlurryError('not_found', 'the snapshot was released');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > byteLength) {
      throw new RangeError(`bytes [${offset}, ${offset + length}) are outside the snapshot of ${byteLength} bytes`);
    }
  };
  if (memory.kind === 'cow') {
    const fd = memory.fd;
    return {
      ...described,
      byteLength,
      zeroPages: memory.zeroPages,
      memfd: fd,
      read(offset, length) {
        checked(offset, length);
        const out = new Uint8Array(length);
        for (let done = 0; done < length; ) {
          const n = readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw new Error(`snapshot memfd ended at ${offset + done} of ${byteLength} bytes`);
          done += n;
        }
        return out;
      },
    };
  }
  if (memory.kind === 'copy') {
    const bytes = memory.bytes;
    return {
      ...described,
      byteLength,
      zeroPages: zeroBitmapFromDataRuns(memory.dataRuns, byteLength / PAGE_SIZE),
      bytes,
      read(offset, length) {
        checked(offset, length);
        return new Uint8Array(bytes, offset, length);
      },
    };
  }
  throw new FlurryError('not_found', 'this snapshot lives on another host: its pages are in the page store');
}
