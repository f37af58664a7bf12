/**
 * A service's instances on the worker hosts: made and destroyed over NATS,
 * kept between the service's min and max by a reconcile (one run at a time
 * per service), added and removed by the autoscaler, and a lost one
 * forgotten and replaced.
 */
import {
  call, FlurryError, newId, serviceKey, ServiceSubjects,
  type CreateInstanceReply, type CreateInstanceRequest, type DestroyInstanceRequest, type Fabric, type HostRecord, type Logger,
  type ServiceInstanceRecord, type ServiceRecord,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { HOSTS_TRIED } from '../planning/best-of.js';
import { serviceInstanceHosts } from '../planning/instance-hosts.js';
import type { RequestCounts } from './request-counts.js';
import type { ServiceStore } from './service-store.js';

export interface InstanceScalingDeps {
  fabric: Fabric;
  fleet: FleetView;
  store: ServiceStore;
  counts: RequestCounts;
  /** How long a host may take to make or destroy an instance. */
  createTimeoutMs: number;
  /** How long a scale-in waits for the requests in flight to a removed instance. */
  invokeTimeoutMs: number;
  /** An instance whose host is silent this long past its TTL is replaced, its state lost (FLURRY_INSTANCE_LOST_MS). */
  instanceLostMs: number;
  log: Logger;
}

export class InstanceScaling {
  /** A reconcile under way per service: requests arriving with no instance wait for it. */
  private readonly reconciling = new Map<string, Promise<void>>();

  constructor(private readonly deps: InstanceScalingDeps) {}

  /** Brings the service to at least min and at most max instances; one run at a time per service. */
  reconcile(tenant: string, name: string, reason: string): Promise<void> {
    const key = serviceKey(tenant, name);
    const p = this.deps.store.locked(key, () => this.reconcileOnce(tenant, name, reason))
      .catch((err: unknown) => this.deps.log.warn({ service: `${tenant}/${name}`, err: (err as Error).message }, 'service scaling failed'))
      .finally(() => {
        if (this.reconciling.get(key) === p) this.reconciling.delete(key);
      });
    this.reconciling.set(key, p);
    return p;
  }

  /** The reconcile of service `key` under way, if any. */
  underWay(key: string): Promise<void> | undefined {
    return this.reconciling.get(key);
  }

  /** Forgets an instance nobody answers for, then scales back to min. */
  async replaceLost(tenant: string, name: string, instanceId: string): Promise<void> {
    const { store } = this.deps;
    const key = serviceKey(tenant, name);
    await store.locked(key, async () => {
      const c = await store.read(key, true);
      if (!c.instances.some((i) => i.id === instanceId)) return;
      this.deps.log.warn({ service: `${tenant}/${name}`, instanceId }, 'service instance lost');
      await store.writeInstances(key, c.record, c.instances.filter((i) => i.id !== instanceId), c.instances);
    });
    await this.reconcile(tenant, name, 'instance lost');
  }

  /**
   * Scale-out: creates one instance on each of `hosts` at once, up to `want`
   * instances in all (never beyond max); each is routed to as soon as it is
   * up. Resolves to the instances made.
   */
  async addInstances(tenant: string, name: string, hosts: HostRecord[], want: number, reason: string): Promise<ServiceInstanceRecord[]> {
    const { store } = this.deps;
    const key = serviceKey(tenant, name);
    return store.locked(key, async () => {
      const { record, instances } = await store.read(key, true);
      // Counted again under the lock: a reconcile that ran meanwhile (a new service's first instance) made some already.
      const made = await this.createAtOnce(key, record, instances, hosts, Math.min(want, record.max) - instances.length, (host, err) =>
        this.deps.log.warn({ service: `${tenant}/${name}`, hostId: host.id, err: (err as Error).message }, 'scale-out instance failed'));
      this.deps.log.info({ service: `${tenant}/${name}`, reason, added: made.length, hosts: made.map((m) => m.host) }, 'service scaled out');
      return made;
    });
  }

  /**
   * Makes up to `count` instances at once, one on each of the first `hosts`
   * (each falling back to the other chosen hosts, then to the ranked ones);
   * each is written, and so routed to, as soon as it is up. Resolves to the
   * instances made; `failed` hears of each that was not.
   */
  private async createAtOnce(
    key: string, record: ServiceRecord, instances: ServiceInstanceRecord[], hosts: HostRecord[], count: number,
    failed: (host: HostRecord, err: unknown) => void,
  ): Promise<ServiceInstanceRecord[]> {
    const made: ServiceInstanceRecord[] = [];
    // One write at a time: concurrent compare-and-set writes of one record would only retry each other.
    let written = Promise.resolve();
    await Promise.all(hosts.slice(0, Math.max(0, count)).map(async (host, i) => {
      const order = [host, ...hosts.filter((h) => h.id !== host.id).slice(i), ...serviceInstanceHosts(this.deps.fleet.live(), instances)];
      const inst = await this.createInstanceOn(record, order).catch((err: unknown) => {
        failed(host, err);
        return undefined;
      });
      if (!inst) return;
      written = written.then(async () => {
        await this.deps.store.writeInstances(key, record, [inst], []);
        made.push(inst);
      });
      await written;
    }));
    return made;
  }

  /**
   * Scale-in: takes the instances out of routing (never below min), waits
   * until `idle(id)` says no gateway has requests in flight to each (up to
   * the invoke timeout), then destroys them. Resolves to the ids removed.
   */
  async removeInstances(tenant: string, name: string, ids: string[], reason: string, idle: (instanceId: string) => boolean): Promise<string[]> {
    const { store } = this.deps;
    const key = serviceKey(tenant, name);
    const removed = await store.locked(key, async () => {
      const { record, instances } = await store.read(key, true);
      const victims = instances.filter((i) => ids.includes(i.id)).slice(0, Math.max(0, instances.length - record.min));
      if (victims.length > 0) await store.writeInstances(key, record, instances.filter((i) => !victims.includes(i)), instances);
      return victims;
    });
    // Requests already routed to a victim finish there; a later one finds no responder and is routed again.
    const deadline = Date.now() + this.deps.invokeTimeoutMs;
    await new Promise((r) => setTimeout(r, 100));
    while (removed.some((v) => !idle(v.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(removed.map((v) => this.destroy(tenant, name, v)));
    if (removed.length > 0) this.deps.log.info({ service: `${tenant}/${name}`, reason, removed: removed.map((v) => v.id) }, 'service scaled in');
    return removed.map((v) => v.id);
  }

  /** Asks the instance's host to destroy it; a host that does not answer is logged, not waited for. */
  async destroy(tenant: string, service: string, inst: ServiceInstanceRecord): Promise<void> {
    const req: DestroyInstanceRequest = { tenant, service, instanceId: inst.id };
    await call(this.deps.fabric.nc, 'destroyInstance', ServiceSubjects.destroy(inst.host), req, { timeoutMs: this.deps.createTimeoutMs })
      .catch((err: unknown) => this.deps.log.warn({ hostId: inst.host, instanceId: inst.id, err: (err as Error).message }, 'instance destroy request failed'));
    this.deps.counts.forget(inst.id);
  }

  private async reconcileOnce(tenant: string, name: string, reason: string): Promise<void> {
    const { store, fleet } = this.deps;
    const key = serviceKey(tenant, name);
    const c = await store.read(key, true).catch(() => undefined);
    if (!c) return;
    // Instances on a draining host still serve until they are migrated away; on a silent host they are kept
    // for the grace (it may be paused and come back with their state).
    let instances = c.instances.filter((i) => !fleet.silentLongerThan(i.host, this.deps.instanceLostMs));
    if (instances.length !== c.instances.length) await store.writeInstances(key, c.record, instances, c.instances);
    // The missing instances are made at once, on as many hosts: a service of min N starts in one instance's time.
    let lastError: unknown;
    while (instances.length < c.record.min) {
      const made = await this.createAtOnce(key, c.record, instances, serviceInstanceHosts(fleet.live(), instances), c.record.min - instances.length, (_host, err) => {
        lastError = err;
      });
      if (made.length === 0) break;
      instances = [...instances, ...made];
    }
    if (instances.length > c.record.max) {
      // Out of routing first, then destroyed.
      const victims = instances.slice(c.record.max);
      await store.writeInstances(key, c.record, instances.slice(0, c.record.max), instances);
      instances = instances.slice(0, c.record.max);
      for (const victim of victims) await this.destroy(tenant, name, victim);
    }
    this.deps.log.info({ service: `${tenant}/${name}`, reason, instances: instances.length, min: c.record.min, max: c.record.max }, 'service scaled');
    if (lastError && instances.length < c.record.min) throw lastError;
  }

  /** Creates an instance on the first of `hosts` (up to HOSTS_TRIED tried) that makes one. */
  private async createInstanceOn(record: ServiceRecord, hosts: HostRecord[]): Promise<ServiceInstanceRecord> {
    if (hosts.length === 0) throw new FlurryError('no_capacity', 'no worker host is available for a service instance', { retryAfterSeconds: 1 });
    let lastError: FlurryError | undefined;
    for (const host of hosts.slice(0, HOSTS_TRIED)) {
      const req: CreateInstanceRequest = {
        requestId: newId('req'), tenant: record.tenant, service: record.name, name: record.function, digest: record.digest, instanceId: newId('inst'),
        ...(record.init ? { init: record.init } : {}), ...(record.initData ? { initData: record.initData } : {}),
      };
      let reply: CreateInstanceReply;
      try {
        reply = await call(this.deps.fabric.nc, 'createInstance', ServiceSubjects.create(host.id), req, { timeoutMs: this.deps.createTimeoutMs });
      } catch (err) {
        this.deps.log.warn({ hostId: host.id, err: (err as Error).message }, 'instance creation request failed');
        lastError = new FlurryError('unavailable', `host ${host.id} did not answer the instance creation`, { retryAfterSeconds: 1 });
        continue;
      }
      if (reply.ok) return { id: reply.instanceId, host: reply.hostId, digest: record.digest, createdAt: Date.now() };
      // A module that cannot start fails everywhere.
      if (reply.error.code !== 'unavailable' && reply.error.code !== 'no_capacity') throw FlurryError.fromWire(reply.error);
      lastError = FlurryError.fromWire(reply.error);
    }
    throw lastError ?? new FlurryError('unavailable', 'could not create a service instance');
  }
}
