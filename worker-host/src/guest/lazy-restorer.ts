/**
 * The lazy restorer (native pager): a clone of a snapshot that lives on
 * another host starts with empty memory registered with userfaultfd; the
 * addon's handler thread fills each page on first touch from the host's page
 * store, and the guest thread sleeps in the fault while a page is still on
 * its way (the host's main thread puts it when it arrives).
 */
import type { NativePager } from '../native/pager.js';
import { growToSnapshotSize, NO_PAGING, type MemoryRestorer, type SnapshotMemory } from './snapshot-memory.js';

type LazySnapshot = Extract<SnapshotMemory, { kind: 'lazy' }>;

/** A CLOCK_MONOTONIC time from the addon (process.hrtime's clock, ns) as ms since the epoch, on performance's clock. */
function epochOfMonotonic(ns: number | undefined): number | undefined {
  if (ns === undefined) return undefined;
  return performance.timeOrigin + performance.now() - (Number(process.hrtime.bigint()) - ns) / 1e6;
}

export function lazyRestorer(snapshot: LazySnapshot, pager: NativePager): MemoryRestorer {
  return {
    mode: 'lazy',
    residentBytes: 0,
    // A page still present would never fault in from the store (and the store, where mapped, may be shorter).
    mapsWholeMemory: false,
    restore(memory) {
      growToSnapshotSize(memory, snapshot.byteLength);
      // An empty memory has no pages to page in (and no address to register); growth past it is zero anyway.
      if (snapshot.byteLength === 0) return { registration: undefined, finish: () => NO_PAGING };
      // The snapshot's pages only: pages the clone grows past it are zero, and the kernel gives zero pages itself,
      // where a registration up to the maximum sent each one through the pager's thread (a round trip per 4 KiB).
      const registration = pager.registerMemory(memory, snapshot.byteLength, snapshot.storeId);
      let finished = false;
      return {
        registration,
        finish() {
          if (finished) return NO_PAGING;
          finished = true;
          const stats = pager.registrationStats(registration);
          // The guest has returned, so no fault of this thread can be pending; if one were, the clone is over
          // and its memory is dropped, so zero-filling it (what unregistering would do anyway) loses nothing.
          if (!pager.unregister(registration)) {
            pager.zeroFillPending(registration);
            pager.unregister(registration);
          }
          return { pagesFromStore: stats.pagesCopied + (stats.pagesMapped ?? 0), zeroPages: stats.zeroPages, pagesWaited: stats.missFaults, faultWaitMs: stats.waitNs / 1e6, firstFaultAt: epochOfMonotonic(stats.firstFaultNs) };
        },
      };
    },
  };
}
