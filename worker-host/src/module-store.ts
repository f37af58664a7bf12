/** Fetches deployed modules from the JetStream object store and checks them against their digest. */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '@nats-io/obj';
import { FlurryError, moduleObjectName } from '@flurry/core';

export async function fetchModule(store: ObjectStore, tenant: string, digest: string): Promise<Uint8Array> {
  const bytes = await store.getBlob(moduleObjectName(tenant, digest));
  if (!bytes) throw new FlurryError('not_found', `module ${digest} of tenant ${tenant} is not in the object store`);
  const actual = createHash('sha256').update(bytes).digest('hex');
  // A module that does not match its name would run code nobody deployed: never use it.
  if (actual !== digest) throw new FlurryError('internal', `module ${digest} failed its digest check (got ${actual})`);
  return bytes;
}
