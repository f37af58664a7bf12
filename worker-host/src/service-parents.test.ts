/** A standby hold's instance thread, with stand-ins for the pool and the function's warming (logic only). */
import { describe, expect, it } from 'vitest';
import { FlurryError, type PlaceReply } from '@flurry/core';
import type { GuestPool } from './guest/guest-pool.js';
import { ServiceParents } from './service-parents.js';

function parentsWhoseThreads(reserve: () => () => void) {
  const warmed: string[] = [];
  const parents = new ServiceParents({
    pool: { reserveInstanceThread: reserve } as unknown as GuestPool,
    modules: undefined as never,
    ensureWarm: async (req) => (warmed.push(req.requestId), { ok: true } as PlaceReply),
    warmKey: (tenant, name, digest) => `${tenant}/${name}@${digest}`,
    readData: async () => new Uint8Array(),
  });
  return { parents, warmed };
}

const spec = (requestId: string) => ({ requestId, tenant: 't', name: 'f', digest: 'd' });

describe('ServiceParents.hold - the standby\'s instance thread', () => {
  it('the host runs its most instance threads (no_capacity) - the hold stands without one', async () => {
    const { parents, warmed } = parentsWhoseThreads(() => {
      throw new FlurryError('no_capacity', 'this host runs its most instance threads');
    });
    await parents.hold(spec('a'), 60_000);
    // Renewed, not made again: the first hold stands.
    await parents.hold(spec('b'), 60_000);
    expect(warmed).toEqual(['a']);
  });

  it('any other failure - the hold fails with it and keeps nothing: the next hold starts afresh', async () => {
    let fail = true;
    const { parents, warmed } = parentsWhoseThreads(() => {
      if (fail) throw new Error('the pool is closed');
      return () => undefined;
    });
    await expect(parents.hold(spec('a'), 60_000)).rejects.toThrow('the pool is closed');
    fail = false;
    await parents.hold(spec('b'), 60_000);
    expect(warmed).toEqual(['a', 'b']);
  });
});
