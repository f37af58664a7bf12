/**
 * The services controller's view of fleet-wide load: the latest report of
 * every gateway (load-reporter.ts), summed per service and per instance.
 * A gateway's report counts until it is `staleMs` old: a gateway with
 * requests in flight repeats its report several times a second, so an old one
 * means it died or went idle without a last report.
 */
import { serviceKey, type ServiceLoad, type ServiceLoadReport } from '@flurry/core';

export interface ServiceLoadSum {
  /** Requests in flight to the service's instances plus requests held for one. */
  total: number;
  held: number;
  perInstance: Map<string, number>;
}

export class FleetLoad {
  private readonly reports = new Map<string, { at: number; services: Map<string, ServiceLoad> }>();

  constructor(private readonly staleMs = 2000) {}

  /** Takes a gateway's report; returns the keys of the services it names (or named before). */
  add(report: ServiceLoadReport, now = Date.now()): string[] {
    const services = new Map(report.services.map((s) => [serviceKey(s.tenant, s.service), s]));
    const before = this.reports.get(report.gateway);
    this.reports.set(report.gateway, { at: now, services });
    return [...new Set([...services.keys(), ...(before?.services.keys() ?? [])])];
  }

  service(key: string, now = Date.now()): ServiceLoadSum {
    const sum: ServiceLoadSum = { total: 0, held: 0, perInstance: new Map() };
    for (const [gateway, r] of this.reports) {
      if (now - r.at > this.staleMs) {
        this.reports.delete(gateway);
        continue;
      }
      const s = r.services.get(key);
      if (!s) continue;
      sum.held += s.held;
      sum.total += s.held;
      for (const [id, n] of Object.entries(s.instances)) {
        sum.perInstance.set(id, (sum.perInstance.get(id) ?? 0) + n);
        sum.total += n;
      }
    }
    return sum;
  }

  /** Requests in flight to one instance, fleet-wide. */
  instance(key: string, instanceId: string, now = Date.now()): number {
    return this.service(key, now).perInstance.get(instanceId) ?? 0;
  }
}
