/**
 * The copy-on-write restorer (native pager): the snapshot lives in a sealed
 * memfd and each clone maps it MAP_PRIVATE over its own fresh memory, so a
 * fork costs an mmap and an instantiation whatever the parent's size, and
 * idle clones share the snapshot's pages.
 */
import { mapSnapshotInto } from '../native/cow-memory.js';
import type { NativePager } from '../native/pager.js';
import { NO_PAGING, type MemoryRestorer, type SnapshotMemory } from './snapshot-memory.js';

type CowSnapshot = Extract<SnapshotMemory, { kind: 'cow' }>;

/** Writes the parent's memory into a new memfd, in the thread that ran init: one copy, zero pages left as holes. */
export function captureCow(memory: WebAssembly.Memory, pager: NativePager): CowSnapshot {
  const fd = pager.memfdCreate('flurry-snapshot', memory);
  try {
    return { kind: 'cow', byteLength: memory.buffer.byteLength, fd, zeroPages: pager.zeroBitmap(memory) };
  } catch (err) {
    pager.closeFd(fd);
    throw err;
  }
}

export function cowRestorer(snapshot: CowSnapshot, pager: NativePager): MemoryRestorer {
  const restored = { registration: undefined, finish: () => NO_PAGING };
  return {
    mode: 'cow',
    // A mapped clone owns no page until it writes one.
    residentBytes: 0,
    // One MAP_FIXED mapping of the snapshot's length, which is the memory's whole size (mapSnapshotInto).
    mapsWholeMemory: true,
    restore(memory) {
      // An empty memory has nothing to map (and no address to map at).
      if (snapshot.byteLength > 0) mapSnapshotInto(pager, memory, snapshot.fd, snapshot.byteLength);
      return restored;
    },
  };
}
