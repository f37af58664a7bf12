/** The guest pool's keys and the memory budget's holding ids of what the forker holds: built from their parts here, never parsed back. */
import type { ForkMode } from '@flurry/core';

/** How an adopted snapshot's chunks reach this host: on the snapshot's multicast subject, or in replies to this host only (a baseline). */
export type PageTransport = 'multicast' | 'unicast';

/** Clone modes that boot a snapshot of their own per clone (baselines). */
export type OwnBootMode = Extract<ForkMode, 'cold' | 'eager'>;

/** A snapshot held in the guest pool for forks. */
export type SnapshotUse =
  /** The parent, made here by a snapshot request. */
  | { kind: 'parent'; snapshotId: string }
  /** A remote parent's snapshot, adopted through a page cache; `adoption` counts adoptions, so a new one never shares a key with one still being evicted. */
  | { kind: 'adopted'; snapshotId: string; transport: PageTransport; adoption: number }
  /** One clone's own copy, booted cold or filled eagerly. */
  | { kind: 'own'; snapshotId: string; mode: OwnBootMode; requestId: string; index: number };

/** The guest pool's key of a snapshot use: distinct for distinct uses. */
export function poolKey(use: SnapshotUse): string {
  switch (use.kind) {
    case 'parent':
      return `snap:${use.snapshotId}`;
    case 'adopted':
      return `snap:${use.snapshotId}:${use.transport}@${use.adoption}`;
    case 'own':
      return `snap:${use.snapshotId}:${use.mode}:${use.requestId}:${use.index}`;
  }
}

/** A page cache's holding id in the memory budget. */
export function pageCacheHolding(snapshotId: string, transport: PageTransport): string {
  return `pages:${snapshotId}:${transport}`;
}
