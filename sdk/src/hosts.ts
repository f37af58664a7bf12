/** `flurry.hosts`: the worker hosts of the fleet, and taking them out of service and back (docs/autoscaling.md). */
import type { Transport } from './transport.js';
import type { ConsolidationState, HostCapacity, HostDrainReport, HostRecord } from './types.js';

/**
 * The hosts API. Reach it as `flurry.hosts`.
 *
 * @example
 * for (const host of await flurry.hosts.list()) console.log(host.id, host.runningGuests);
 * const { moved } = await flurry.hosts.drain('host-2'); // its service instances migrate away
 */
export class HostsApi {
  constructor(private readonly transport: Transport) {}

  /**
   * Every host that has heartbeated recently, as it last reported itself: the whole record
   * for an admin key, capacity figures only for a user key (`isFullHostRecord` tells them apart).
   */
  async list(): Promise<(HostRecord | HostCapacity)[]> {
    const answer = await this.transport.json<{ hosts: (HostRecord | HostCapacity)[] }>({ method: 'GET', path: '/v1/hosts' });
    return answer.hosts;
  }

  /**
   * Takes the host out of service: nothing new is placed there and each of its service
   * instances is migrated away. Resolves once all are tried (this may take minutes); the host is
   * then `drained`, or stays `draining` when a move failed (see `failed`).
   */
  async drain(id: string): Promise<HostDrainReport> {
    return (await this.transport.json<{ drain: HostDrainReport }>({ method: 'POST', path: hostPath(id, '/drain') })).drain;
  }

  /** Puts a draining or drained host back to work. */
  async activate(id: string): Promise<void> {
    await this.transport.json<{ activated: string }>({ method: 'POST', path: hostPath(id, '/activate') });
  }

  /** Each host's state, and the services controller's latest moves of every tenant's instances, newest last (admin keys only). */
  async consolidation(): Promise<ConsolidationState> {
    return this.transport.json<ConsolidationState>({ method: 'GET', path: '/v1/consolidation' });
  }
}

/**
 * Whether `hosts.list()` gave a host's whole record (an admin key) or its capacity figures only (a user key).
 *
 * @example
 * const names = (await flurry.hosts.list()).filter(isFullHostRecord).map((h) => h.hostname);
 */
export function isFullHostRecord(host: HostRecord | HostCapacity): host is HostRecord {
  return 'hostname' in host;
}

function hostPath(id: string, action: string): string {
  return `/v1/hosts/${encodeURIComponent(id)}${action}`;
}
