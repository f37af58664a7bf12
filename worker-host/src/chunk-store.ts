/**
 * Where a page cache keeps the chunks of a snapshot it receives (the two forms
 * of page-cache.ts): the native pager's C page store, from which the fault
 * handler thread serves clone faults without JavaScript, or, for the portable
 * pager, a SharedArrayBuffer that clones copy once it is full.
 */
import { onHandlerDeath } from './native/handler-death.js';
import type { NativePager } from './native/pager.js';
import type { SnapshotDescriptor } from '@flurry/core';

/** What a clone's memory is made from: the pager's store (lazy) or the filled buffer (copy). */
export type CacheSource = { kind: 'lazy'; storeId: number } | { kind: 'copy'; bytes: SharedArrayBuffer };

export interface ChunkStore {
  readonly source: CacheSource;
  /** Keeps a verified chunk (`start`: its byte offset in the snapshot's memory). */
  put(chunk: number, start: number, bytes: Uint8Array): void;
  /** Frees the store; the caller has stopped every clone using it. */
  close(): void;
}

/**
 * A C page store sized for the snapshot, its zero pages marked. Faults on
 * pages it lacks come to `miss` (as chunks, on this thread); the fault handler
 * thread's death to `handlerDied`.
 */
export function nativeChunkStore(pager: NativePager, d: SnapshotDescriptor, on: { miss(chunk: number): void; handlerDied(reason: string): void }): ChunkStore {
  const storeId = pager.createStore(Math.ceil(d.memoryBytes / d.pageSize), d.pageSize);
  // Pages on the host fault like a file's: the kernel maps them, only missing and zero pages reach the handler thread.
  pager.storeConfigure(storeId, { chunkPages: d.chunkPages, mapPages: true });
  pager.storeMarkZero(storeId, d.zeroPages);
  pager.setMissHandler(storeId, (missed) => {
    for (const p of missed) on.miss(Math.floor(p / d.chunkPages));
  });
  const unwatchHandler = onHandlerDeath(pager, on.handlerDied);
  return {
    source: { kind: 'lazy', storeId },
    put: (chunk, _start, bytes) => void pager.storePut(storeId, chunk * d.chunkPages, bytes),
    close: () => {
      unwatchHandler();
      pager.setMissHandler(storeId, null);
      try {
        pager.dropStore(storeId);
      } catch {
        // A registration still uses it (a clone being torn down); the addon frees it with the last one.
      }
    },
  };
}

/** A SharedArrayBuffer of the snapshot's size (the portable pager). */
export function sharedChunkStore(d: SnapshotDescriptor): ChunkStore {
  const bytes = new SharedArrayBuffer(d.memoryBytes);
  return {
    source: { kind: 'copy', bytes },
    put: (_chunk, start, chunk) => new Uint8Array(bytes, start, chunk.length).set(chunk),
    close: () => undefined,
  };
}
