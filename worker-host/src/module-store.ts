/**
 * Fetches deployed modules from the JetStream object store, checks them
 * against their digest, and keeps recent ones in memory: a fork or placement
 * of a module this host has seen costs no round trip to the store.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '@nats-io/obj';
import { FlurryError, moduleObjectName } from '@flurry/core';

/** Modules kept in memory (they are small next to their snapshots). */
const CACHE_ENTRIES = 64;
const cache = new Map<string, Promise<Uint8Array>>();

export function fetchModule(store: ObjectStore, tenant: string, digest: string): Promise<Uint8Array> {
  const name = moduleObjectName(tenant, digest);
  let entry = cache.get(name);
  if (entry) {
    cache.delete(name); // refresh its place in the LRU order
  } else {
    entry = load(store, tenant, digest);
    entry.catch(() => cache.delete(name));
  }
  cache.set(name, entry);
  if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  return entry;
}

async function load(store: ObjectStore, tenant: string, digest: string): Promise<Uint8Array> {
  const bytes = await store.getBlob(moduleObjectName(tenant, digest));
  if (!bytes) throw new FlurryError('not_found', `module ${digest} of tenant ${tenant} is not in the object store`);
  const actual = createHash('sha256').update(bytes).digest('hex');
  // A module that does not match its name would run code nobody deployed: never use it.
  if (actual !== digest) throw new FlurryError('internal', `module ${digest} failed its digest check (got ${actual})`);
  return bytes;
}
