/**
 * How a snapshot's linear memory is kept and put into a clone: the one place
 * to swap when the native addon replaces copying with a copy-on-write mapping
 * of a memfd (and remote clones with lazy userfaultfd paging).
 *
 * This version copies: the parent's memory goes into a SharedArrayBuffer that
 * every guest thread reads without another copy, and a clone gets only the
 * 4 KiB pages that hold data (a fresh memory is already zero, and each page
 * touched costs a first-touch fault).
 */

/** A snapshot's memory as posted to guest threads. */
export interface SnapshotMemory {
  byteLength: number;
  bytes: SharedArrayBuffer;
  /** Runs of pages holding non-zero bytes, as [firstPage, endPage) pairs of 4 KiB pages. */
  dataRuns: Uint32Array;
}

/** Puts a snapshot's memory into a clone's fresh memory. */
export interface MemoryRestorer {
  readonly byteLength: number;
  /** Bytes a restored memory holds of its own (what an idle spare clone costs). */
  readonly residentBytes: number;
  /** Grows `memory` to exactly the snapshot's size and makes it hold the snapshot's bytes. */
  restore(memory: WebAssembly.Memory): void;
}

const PAGE = 4096;
const WASM_PAGE = 65536;

/** Freezes a parent's memory (between calls only: it must not change meanwhile). */
export function captureMemory(memory: WebAssembly.Memory): SnapshotMemory {
  const source = new Uint8Array(memory.buffer);
  const bytes = new SharedArrayBuffer(source.length);
  new Uint8Array(bytes).set(source);
  return { byteLength: source.length, bytes, dataRuns: findDataRuns(source) };
}

function findDataRuns(bytes: Uint8Array): Uint32Array {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const wordsPerPage = PAGE / 4;
  const pages = bytes.length / PAGE;
  const runs: number[] = [];
  let runStart = -1;
  for (let page = 0; page < pages; page++) {
    let hasData = false;
    for (let w = page * wordsPerPage, end = w + wordsPerPage; w < end; w++) {
      if (words[w] !== 0) {
        hasData = true;
        break;
      }
    }
    if (hasData && runStart < 0) runStart = page;
    else if (!hasData && runStart >= 0) {
      runs.push(runStart, page);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push(runStart, pages);
  return Uint32Array.from(runs);
}

/** Made once per snapshot per thread, so that restoring allocates nothing big. */
export function memoryRestorer(snapshot: SnapshotMemory): MemoryRestorer {
  const pieces: { offset: number; bytes: Uint8Array }[] = [];
  for (let i = 0; i < snapshot.dataRuns.length; i += 2) {
    const offset = snapshot.dataRuns[i] * PAGE;
    pieces.push({ offset, bytes: new Uint8Array(snapshot.bytes, offset, snapshot.dataRuns[i + 1] * PAGE - offset) });
  }
  const pages = snapshot.byteLength / WASM_PAGE;
  return {
    byteLength: snapshot.byteLength,
    residentBytes: pieces.reduce((n, p) => n + p.bytes.length, 0),
    restore(memory) {
      const current = memory.buffer.byteLength / WASM_PAGE;
      // A clone starts at the module's initial size, which the parent's memory can only have grown from.
      if (current > pages) throw new Error(`a fresh clone memory of ${current} pages is larger than its snapshot of ${pages} pages`);
      if (current < pages) memory.grow(pages - current);
      const target = new Uint8Array(memory.buffer);
      for (const piece of pieces) target.set(piece.bytes, piece.offset);
    },
  };
}
