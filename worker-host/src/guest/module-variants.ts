/**
 * A module rewritten for snapshots (parent and clone variants) with its clone
 * variant compiled, cached by the module's digest so that every snapshot of
 * one function, warmed here or adopted from another host, shares them.
 */
import { createHash } from 'node:crypto';
import { FlurryError, inspectModule, onlyMemoryAndGlobalsChange, rewriteForSnapshot, type GlobalType } from '@flurry/core';
import { CurrentCall } from './current-call.js';
import { GuestFailure } from './guest-failure.js';
import { globalTypes } from './global-types.js';
import { buildImportObject, hostFunctions } from './import-object.js';
import { stackPointerExport } from './stack-pointer.js';

/** wasm32's limit, for a memory that declares no maximum. */
const WASM32_MAX_PAGES = 65536;

export interface ModuleVariants {
  /** SHA-256 (hex) of the original module. */
  digest: string;
  /** The parent variant, compiled by each warm (rarely twice). */
  parent: Uint8Array;
  clone: WebAssembly.Module;
  /** The memory's declared maximum, in 64 KiB pages. */
  maximumPages: number;
  /** Type of each mutable global by its `__flurry_global_<i>` export; undefined where a snapshot cannot describe it. */
  globalTypes: Map<string, GlobalType | undefined>;
  /** The export of the shadow-stack pointer global, when the module shows one (rewound after a trap in a persistent instance). */
  stackPointer?: string;
  /**
   * Its code changes nothing of an instance but memory and globals (core's wasm-instance-state.ts): an instance
   * that ran a clone serves the next, once a snapshot is mapped over its memory and its globals set.
   */
  instancesReusable: boolean;
}

export async function compile(bytes: Uint8Array): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (err) {
    throw new FlurryError('invalid_module', `not a valid WebAssembly module: ${(err as Error).message}`);
  }
}

async function makeVariants(bytes: Uint8Array, digest: string): Promise<ModuleVariants> {
  let rewritten: ReturnType<typeof rewriteForSnapshot>;
  let maximumPages: number;
  let types: (GlobalType | undefined)[];
  try {
    rewritten = rewriteForSnapshot(bytes);
    maximumPages = inspectModule(bytes).memory?.maximum ?? WASM32_MAX_PAGES;
    types = globalTypes(bytes);
  } catch (err) {
    throw new FlurryError('invalid_module', (err as Error).message);
  }
  const clone = await compile(rewritten.clone);
  try {
    // Guest threads build this import object for every snapshot of the module; refuse here what they could not build.
    buildImportObject(clone, hostFunctions(new CurrentCall()));
  } catch (err) {
    throw err instanceof GuestFailure ? new FlurryError(err.code, err.message) : err;
  }
  const byExport = new Map(rewritten.globalExports.map((name) => [name, types[Number(name.slice(name.lastIndexOf('_') + 1))]]));
  return {
    digest, parent: rewritten.parent, clone, maximumPages, globalTypes: byExport, stackPointer: stackPointerExport(bytes, rewritten.globalExports),
    instancesReusable: onlyMemoryAndGlobalsChange(bytes),
  };
}

export class ModuleVariantsCache {
  private readonly entries = new Map<string, { variants: Promise<ModuleVariants>; users: number }>();

  /** Rewrites and compiles on first use; every successful acquire needs one release. */
  acquire(bytes: Uint8Array): Promise<ModuleVariants> {
    const digest = createHash('sha256').update(bytes).digest('hex');
    let entry = this.entries.get(digest);
    if (!entry) {
      const made = { variants: makeVariants(bytes, digest), users: 0 };
      made.variants.catch(() => {
        if (this.entries.get(digest) === made) this.entries.delete(digest);
      });
      this.entries.set(digest, made);
      entry = made;
    }
    entry.users++;
    return entry.variants;
  }

  release(variants: ModuleVariants): void {
    const entry = this.entries.get(variants.digest);
    if (entry && --entry.users === 0) this.entries.delete(variants.digest);
  }

  /** Digests with at least one user. */
  get size(): number {
    return this.entries.size;
  }
}
