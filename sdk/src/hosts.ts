/** `flurry.hosts`: the worker hosts of the fleet. */
import type { Transport } from './transport.js';
import type { HostRecord } from './types.js';

/**
 * The hosts API. Reach it as `flurry.hosts`.
 *
 * @example
 * for (const host of await flurry.hosts.list()) console.log(host.id, host.runningGuests);
 */
export class HostsApi {
  constructor(private readonly transport: Transport) {}

  /** Every host that has heartbeated recently, as it last reported itself. */
  async list(): Promise<HostRecord[]> {
    const answer = await this.transport.json<{ hosts: HostRecord[] }>({ method: 'GET', path: '/v1/hosts' });
    return answer.hosts;
  }
}
