/**
 * Standby parents (docs/autoscaling.md): the controller keeps each service's
 * warm parent on the hosts its next scale-out would pick, so that scaling out
 * there is a copy-on-write clone of a parent in memory, not a module compile
 * and an `init` run while the burst is already waiting. A hold lasts HOLD_MS
 * on the host and is renewed every RENEW_MS while the service can still grow;
 * a service at its max, or gone, stops renewing and the hosts let go.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  call, newId, serviceKey, ServiceSubjects,
  type HostRecord, type Logger, type ServiceRecord, type StandbyParentRequest,
} from '@flurry/core';

const HOLD_MS = 60_000;
const RENEW_MS = 20_000;

export class StandbyParents {
  /** `<service key>@<host>` -> when its hold was last asked for. */
  private readonly asked = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  /** Asks each host to keep the service's parent warm, unless it was asked within RENEW_MS. */
  keep(record: ServiceRecord, hosts: HostRecord[]): void {
    const now = Date.now();
    for (const [k, at] of this.asked) if (now - at > HOLD_MS) this.asked.delete(k);
    for (const host of hosts) {
      const k = `${serviceKey(record.tenant, record.name)}@${host.id}`;
      if (now - (this.asked.get(k) ?? 0) < RENEW_MS) continue;
      this.asked.set(k, now);
      const req: StandbyParentRequest = {
        requestId: newId('standby'), tenant: record.tenant, name: record.function, digest: record.digest,
        ...(record.init ? { init: record.init } : {}), ...(record.initData ? { initData: record.initData } : {}), holdMs: HOLD_MS,
      };
      const failed = (message: string) => {
        this.asked.delete(k);
        this.log.debug({ service: `${record.tenant}/${record.name}`, hostId: host.id, err: message }, 'standby parent refused');
      };
      // The table's timeout (2 minutes): a parent boot can take long (a large init), and the hold is only useful once it is warm.
      call(this.nc, 'standby', ServiceSubjects.standby(host.id), req)
        .then((reply) => {
          if (!reply.ok) failed(reply.error.message);
        })
        .catch((err: unknown) => failed((err as Error).message));
    }
  }
}
