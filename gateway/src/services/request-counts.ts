/**
 * This gateway's load on its services: requests in flight per instance and
 * requests held per service (waiting for a first instance). Routing reads
 * them to pick the least loaded instance; the load reporter publishes them
 * (load-reporter.ts) for the autoscaler.
 */
import type { ServiceLoad } from '@flurry/core';

export class RequestCounts {
  private readonly inFlightTo = new Map<string, number>();
  /** The service key of each instance with requests in flight here. */
  private readonly serviceOf = new Map<string, string>();
  private readonly held = new Map<string, number>();

  /** `onChange`: called whenever a count changes (the load reporter publishes then). */
  constructor(private readonly onChange?: () => void) {}

  /** Requests in flight from this gateway to one instance. */
  inFlight(instanceId: string): number {
    return this.inFlightTo.get(instanceId) ?? 0;
  }

  /** A request to instance `instanceId` of service `key` is sent. */
  sent(key: string, instanceId: string): void {
    this.serviceOf.set(instanceId, key);
    this.change(this.inFlightTo, instanceId, 1);
  }

  /** A request sent to the instance has ended (answered or not). */
  ended(instanceId: string): void {
    this.change(this.inFlightTo, instanceId, -1);
    if (!this.inFlightTo.has(instanceId)) this.serviceOf.delete(instanceId);
  }

  /** A request to service `key` waits for its first instance (`delta` 1), or has stopped waiting (-1). */
  holding(key: string, delta: 1 | -1): void {
    this.change(this.held, key, delta);
  }

  /** The instance is destroyed: its count goes. */
  forget(instanceId: string): void {
    this.inFlightTo.delete(instanceId);
  }

  /** Requests in flight per instance and held per service, for services with any. */
  load(): ServiceLoad[] {
    const out = new Map<string, ServiceLoad>();
    const entry = (key: string) => {
      let l = out.get(key);
      if (!l) {
        const dot = key.indexOf('.');
        l = { tenant: key.slice(0, dot), service: key.slice(dot + 1), held: 0, instances: {} };
        out.set(key, l);
      }
      return l;
    };
    for (const [key, n] of this.held) entry(key).held = n;
    for (const [id, n] of this.inFlightTo) {
      const key = this.serviceOf.get(id);
      if (key) entry(key).instances[id] = n;
    }
    return [...out.values()];
  }

  private change(counts: Map<string, number>, id: string, delta: number): void {
    const n = (counts.get(id) ?? 0) + delta;
    if (n <= 0) counts.delete(id);
    else counts.set(id, n);
    this.onChange?.();
  }
}
