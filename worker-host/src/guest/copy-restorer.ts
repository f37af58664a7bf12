/**
 * The portable restorer: the snapshot's memory is a SharedArrayBuffer that
 * every guest thread reads without another copy, and a clone gets only the
 * 4 KiB pages that hold data (a fresh memory is already zero, and each page
 * touched costs a first-touch fault, about 3.5 ms per MiB on our machines).
 */
import { PAGE_SIZE } from '@flurry/core/basics';
import { dataRunsFromZeroBitmap, findDataRuns } from './page-runs.js';
import { growToSnapshotSize, NO_PAGING, type MemoryRestorer, type SnapshotMemory } from './snapshot-memory.js';

type CopySnapshot = Extract<SnapshotMemory, { kind: 'copy' }>;

export function captureCopy(memory: WebAssembly.Memory): CopySnapshot {
  const source = new Uint8Array(memory.buffer);
  const bytes = new SharedArrayBuffer(source.length);
  new Uint8Array(bytes).set(source);
  return { kind: 'copy', byteLength: source.length, bytes, dataRuns: findDataRuns(source) };
}

/** A copy snapshot over bytes someone else filled (another host's snapshot); the zero bitmap, when known, spares scanning them. */
export function copySnapshotOf(bytes: SharedArrayBuffer, byteLength: number, zeroPages?: Uint8Array): CopySnapshot {
  if (bytes.byteLength !== byteLength) throw new RangeError(`snapshot bytes hold ${bytes.byteLength} bytes, the snapshot has ${byteLength}`);
  const dataRuns = zeroPages ? dataRunsFromZeroBitmap(zeroPages, byteLength / PAGE_SIZE) : findDataRuns(new Uint8Array(bytes));
  return { kind: 'copy', byteLength, bytes, dataRuns };
}

export function copyRestorer(snapshot: CopySnapshot): MemoryRestorer {
  const pieces: { offset: number; bytes: Uint8Array }[] = [];
  for (let i = 0; i < snapshot.dataRuns.length; i += 2) {
    const offset = snapshot.dataRuns[i] * PAGE_SIZE;
    pieces.push({ offset, bytes: new Uint8Array(snapshot.bytes, offset, snapshot.dataRuns[i + 1] * PAGE_SIZE - offset) });
  }
  const residentBytes = pieces.reduce((n, p) => n + p.bytes.length, 0);
  const stats = { ...NO_PAGING, pagesFromStore: residentBytes / PAGE_SIZE };
  return {
    mode: 'copy',
    residentBytes,
    // Only the pages holding data are copied: the rest must be zero already.
    mapsWholeMemory: false,
    restore(memory) {
      growToSnapshotSize(memory, snapshot.byteLength);
      const target = new Uint8Array(memory.buffer);
      for (const piece of pieces) target.set(piece.bytes, piece.offset);
      return { registration: undefined, finish: () => stats };
    },
  };
}
