/** Which restorer puts a snapshot's memory into clones, and how a parent's memory is captured into a snapshot. */
import type { NativePager } from '../native/pager.js';
import { captureCopy, copyRestorer } from './copy-restorer.js';
import { captureCow, cowRestorer } from './cow-restorer.js';
import { lazyRestorer } from './lazy-restorer.js';
import type { MemoryRestorer, SnapshotMemory } from './snapshot-memory.js';

/**
 * Freezes a parent's memory (between calls only: it must not change
 * meanwhile): into a memfd with the native pager, else into a SharedArrayBuffer.
 */
export function captureMemory(memory: WebAssembly.Memory, pager: NativePager | undefined): SnapshotMemory {
  return pager ? captureCow(memory, pager) : captureCopy(memory);
}

export function memoryRestorer(snapshot: SnapshotMemory, pager: NativePager | undefined): MemoryRestorer {
  if (snapshot.kind === 'copy') return copyRestorer(snapshot);
  if (!pager) throw new Error(`a ${snapshot.kind} snapshot needs the native pager, which this guest thread has not loaded`);
  return snapshot.kind === 'cow' ? cowRestorer(snapshot, pager) : lazyRestorer(snapshot, pager);
}
