/**
 * Requests per second of each service instance, for the dashboard: made
 * from the request counters the hosts put in their heartbeats
 * (`HostRecord.instances[].requests`), over the last few seconds of
 * heartbeats seen. A counter starts at 0 on each host an instance comes to
 * (after a migration), so samples are kept per host and instance.
 */
import type { HostRecord } from '@flurry/core';

/** The window the rate is measured over. */
const WINDOW_MS = 5000;

interface Sample {
  at: number;
  requests: number;
}

export class RequestRates {
  /** Per `host/instance`: heartbeat samples within the window, oldest first. */
  private readonly samples = new Map<string, Sample[]>();

  /** Takes in the hosts' latest records; instances no host lists any more are forgotten. */
  observe(hosts: HostRecord[]): void {
    const seen = new Set<string>();
    for (const h of hosts) {
      for (const i of h.instances ?? []) {
        const key = `${h.id}/${i.instanceId}`;
        seen.add(key);
        const list = this.samples.get(key) ?? [];
        let last = list.at(-1);
        if (last && i.requests < last.requests) {
          list.length = 0;
          last = undefined;
        }
        if (!last || h.heartbeatAt > last.at) list.push({ at: h.heartbeatAt, requests: i.requests });
        while (list.length > 2 && list[1]!.at <= h.heartbeatAt - WINDOW_MS) list.shift();
        this.samples.set(key, list);
      }
    }
    for (const key of this.samples.keys()) if (!seen.has(key)) this.samples.delete(key);
  }

  /** Requests per second of the instance on that host; undefined until two heartbeats were seen. */
  perSecond(hostId: string, instanceId: string): number | undefined {
    const list = this.samples.get(`${hostId}/${instanceId}`);
    if (!list || list.length < 2) return undefined;
    const first = list[0]!;
    const last = list.at(-1)!;
    return ((last.requests - first.requests) * 1000) / (last.at - first.at);
  }
}
