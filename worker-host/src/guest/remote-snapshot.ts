/**
 * A snapshot of a parent on another host (RemoteSnapshot), as the host hands
 * it over to be adopted (from a snapshot descriptor and its page cache),
 * checked against the module and turned into what guest threads make clones from.
 */
import { FlurryError, PAGE_SIZE, WASM_PAGE_SIZE, type SnapshotGlobal } from '@flurry/core';
import { nativePagerStatus, type NativePager } from '../native/pager.js';
import { copySnapshotOf } from './copy-restorer.js';
import type { GlobalValue, Snapshot } from './instance.js';
import type { ModuleVariants } from './module-variants.js';

export interface RemoteSnapshot {
  /** The original module (rewritten and compiled once per module digest, shared by every snapshot of it). */
  moduleBytes: Uint8Array;
  /** The parent's memory size: a whole number of 64 KiB pages. */
  byteLength: number;
  /** The module's declared maximum, in 64 KiB pages. */
  maximumPages: number;
  /** Every mutable global of the module, as the snapshot descriptor carries them. */
  globals: SnapshotGlobal[];
  /** The tenant whose parent it is: its clones run only where that tenant's instances may be hurt. */
  tenant?: string;
  source:
    /** A native page store (createStore) of exactly byteLength / 4096 pages, which the host fills and whose miss handler it installed. */
    | { kind: 'lazy'; storeId: number }
    /** The memory's bytes, complete before the first call; the zero bitmap, when given, spares scanning them. */
    | { kind: 'copy'; bytes: SharedArrayBuffer; zeroPages?: Uint8Array };
}

/** What can be checked before the module is compiled: sizes, and the page store of a lazy snapshot. */
export function checkRemote(remote: RemoteSnapshot, native: NativePager | undefined): void {
  const { byteLength, maximumPages, source } = remote;
  if (!Number.isSafeInteger(byteLength) || byteLength < 0 || byteLength % WASM_PAGE_SIZE !== 0 || byteLength / WASM_PAGE_SIZE > maximumPages) {
    throw new FlurryError('bad_request', `a snapshot of ${byteLength} bytes is not a whole number of wasm pages within its maximum of ${maximumPages}`);
  }
  if (source.kind !== 'lazy') return;
  const status = nativePagerStatus();
  if (!native || !status.available) throw new FlurryError('unavailable', `this pool cannot page memory lazily: ${native ? status.reason : 'it runs the portable pager'}`);
  let pageCount: number;
  try {
    pageCount = native.storeStats(source.storeId).pageCount;
  } catch (err) {
    throw new FlurryError('bad_request', `page store ${source.storeId}: ${(err as Error).message}`);
  }
  // Pages past the end of a store read as zeros: a short store would lose data silently.
  if (pageCount !== byteLength / PAGE_SIZE) throw new FlurryError('bad_request', `page store ${source.storeId} has ${pageCount} pages, the snapshot ${byteLength / PAGE_SIZE}`);
}

/** The snapshot guest threads restore from; refuses globals and a maximum that do not match the module. */
export function snapshotFromRemote(remote: RemoteSnapshot, variants: ModuleVariants): Snapshot {
  const { byteLength, maximumPages, source } = remote;
  if (variants.maximumPages !== maximumPages) throw new FlurryError('bad_request', `the snapshot's maximum of ${maximumPages} pages is not the module's ${variants.maximumPages}`);
  const missing = [...variants.globalTypes.keys()].filter((name) => !remote.globals.some((g) => g.name === name));
  if (missing.length > 0) throw new FlurryError('bad_request', `the snapshot lacks mutable globals ${missing.join(', ')}`);
  const globals = remote.globals.map((g) => ({ name: g.name, value: globalValue(g, variants.globalTypes.get(g.name)) }));
  const memory: Snapshot['memory'] =
    source.kind === 'lazy'
      ? { kind: 'lazy', byteLength, storeId: source.storeId }
      : copySnapshotOf(source.bytes, byteLength, source.zeroPages);
  return { memory, globals };
}

/** A snapshot global as a WebAssembly.Global value of its type. */
function globalValue(global: SnapshotGlobal, expected: string | undefined): GlobalValue {
  if (global.type !== expected) throw new FlurryError('bad_request', `global ${global.name} is ${global.type} in the snapshot but ${expected ?? 'not a mutable global'} in the module`);
  if (global.type !== 'i64') return Number(global.value);
  if (!/^-?\d+$/.test(String(global.value))) throw new FlurryError('bad_request', `global ${global.name}: ${global.value} is not an i64`);
  return BigInt(global.value);
}
