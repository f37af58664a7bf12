/**
 * Placement of warm parents: asking the best hosts for a function
 * (planning/warm-parent.ts chooses them) to hold it. A host that answers
 * no_capacity is passed over for the next. Concurrent requests to place the
 * same function version share one attempt.
 */
import { call, CallFailed, FlurryError, Subjects, type Fabric, type FunctionRecord, type Logger, type PlaceReply, type PlaceRequest } from '@flurry/core';
import type { FleetView } from './fleet-view.js';
import { warmParentHosts } from './planning/warm-parent.js';

export class Placement {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Places a warm parent of `fn` on one more host; resolves to its id. */
  place(fn: FunctionRecord, requestId: string): Promise<string> {
    const key = `${fn.tenant}.${fn.name}@${fn.digest}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.tryHosts(fn, requestId).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  /** True while a placement of this function version is under way. */
  placing(fn: FunctionRecord): boolean {
    return this.pending.has(`${fn.tenant}.${fn.name}@${fn.digest}`);
  }

  private async tryHosts(fn: FunctionRecord, requestId: string): Promise<string> {
    const candidates = warmParentHosts(fn, this.fleet.live());
    if (candidates.length === 0) {
      throw new FlurryError('no_capacity', 'no worker host is available to run this function', { retryAfterSeconds: 1 });
    }
    let lastError: FlurryError | undefined;
    for (const host of candidates) {
      const req: PlaceRequest = { requestId, tenant: fn.tenant, name: fn.name, digest: fn.digest };
      let reply: PlaceReply;
      try {
        reply = await call(this.fabric.nc, 'place', Subjects.place(host.id), req, { timeoutMs: this.timeoutMs });
      } catch (err) {
        if (err instanceof CallFailed) {
          this.log.warn({ requestId, hostId: host.id, err: err.message }, 'place request failed');
          lastError = new FlurryError('unavailable', `host ${host.id} did not answer the placement`, { retryAfterSeconds: 1 });
        } else lastError = new FlurryError('unavailable', `host ${host.id} answered the placement with a malformed reply`, { retryAfterSeconds: 1 });
        continue;
      }
      if (reply.ok) {
        this.log.info({ requestId, fn: `${fn.tenant}/${fn.name}`, hostId: host.id, initMs: reply.initMs }, 'placed');
        return reply.hostId;
      }
      // A module that fails to start fails everywhere: say so instead of trying every host.
      if (reply.error.code !== 'unavailable' && reply.error.code !== 'no_capacity') throw FlurryError.fromWire(reply.error);
      lastError = FlurryError.fromWire(reply.error);
    }
    throw new FlurryError(lastError?.code === 'no_capacity' ? 'no_capacity' : 'unavailable', `could not place function "${fn.name}": ${lastError?.message}`, { retryAfterSeconds: 1 });
  }
}
