/**
 * Where services live: their records and instance placements in JetStream KV
 * (so that any gateway can serve the API and route), a short cache of both
 * kept current by a watch of the placements, and one lock per service for
 * this gateway's read-modify-write steps. Placements are written by
 * compare-and-set: another gateway may write them meanwhile.
 */
import type { KV } from '@nats-io/kv';
import {
  decodeChecked, decodeOrRefuse, encode, FlurryError, followKv, isBrokerFailure, kvKeys, NAME_PATTERN, openKv, serviceKey, ServiceBuckets,
  type Fabric, type Logger, type ServiceInstanceRecord, type ServiceRecord,
} from '@flurry/core';

/** How long a read serves routing before the store is asked again (the placements watch keeps it current meanwhile). */
const CACHE_MS = 1000;

/** A service's record and its instances' placements. */
export interface ServiceState {
  record: ServiceRecord;
  instances: ServiceInstanceRecord[];
}

interface Cached extends ServiceState {
  readAt: number;
}

/** The key of service `name` as a request names it; `not_found` for a name no service can have. */
export function serviceKeyOf(tenant: string, name: string): string {
  if (!NAME_PATTERN.test(name)) throw new FlurryError('not_found', `service "${name}" does not exist`);
  return serviceKey(tenant, name);
}

export class ServiceStore {
  private readonly cache = new Map<string, Cached>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Waiting for a service's placements to change (a request held for its first instance). */
  private readonly placementWaiters = new Map<string, Set<() => void>>();

  private constructor(
    private readonly fabric: Fabric,
    private readonly log: Logger,
    private readonly services: KV,
    private readonly placements: KV,
  ) {}

  static async open(fabric: Fabric, log: Logger): Promise<ServiceStore> {
    const [services, placements] = await Promise.all([
      openKv(fabric, 'services'),
      openKv(fabric, 'serviceInstances'),
    ]);
    const store = new ServiceStore(fabric, log, services, placements);
    await store.watchPlacements();
    return store;
  }

  /**
   * Follows the placements bucket, so that an instance made or moved by
   * another gateway (the controller's autoscaler) is routed to at once, not
   * after the cache expires, and held requests learn of new instances.
   */
  private async watchPlacements(): Promise<void> {
    await followKv(this.placements, { include: 'updates' as never }, (e) => {
      const cached = this.cache.get(e.key);
      const instances = e.operation === 'PUT' && e.value.length > 0 ? decodeChecked('ServiceInstanceRecords', e.value, e.key) : undefined;
      if (cached && instances) {
        cached.instances = instances;
        cached.readAt = Date.now();
      } else if (e.operation !== 'PUT' || !instances) this.cache.delete(e.key);
      for (const wake of this.placementWaiters.get(e.key) ?? []) wake();
    }, this.log, 'placements', () => this.fabric.nc.isClosed(), this.fabric.link);
  }

  /** The service's record and placements: cached up to CACHE_MS unless `fresh`; `not_found` when it does not exist. */
  async read(key: string, fresh = false): Promise<ServiceState> {
    const cached = this.cache.get(key);
    if (cached && !fresh && Date.now() - cached.readAt < CACHE_MS) return cached;
    const e = await this.services.get(key);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) {
      this.cache.delete(key);
      throw new FlurryError('not_found', `service "${key.slice(key.indexOf('.') + 1)}" does not exist`);
    }
    const record = decodeOrRefuse('ServiceRecord', e.value, key, 'internal');
    const p = await this.placements.get(key);
    const instances = p && p.operation === 'PUT' && p.value.length > 0 ? decodeOrRefuse('ServiceInstanceRecords', p.value, key, 'internal') : [];
    const c = { record, instances, readAt: Date.now() };
    this.cache.set(key, c);
    return c;
  }

  /**
   * The service as routing needs it (read, cached CACHE_MS); while the store
   * does not answer (on a cluster, its stream electing a leader after a node's
   * loss) the cached copy, which the placements watch keeps current.
   */
  async readForRouting(key: string): Promise<ServiceState> {
    try {
      return await this.read(key);
    } catch (err) {
      const cached = this.cache.get(key);
      if (cached && isBrokerFailure(err)) return cached;
      throw err;
    }
  }

  /** The cached copy, whatever its age (when the store does not answer). */
  cached(key: string): ServiceState | undefined {
    return this.cache.get(key);
  }

  /** Drops the cached copy: the next read asks the store. */
  forget(key: string): void {
    this.cache.delete(key);
  }

  /** The keys of every service, or of one tenant's. */
  async keys(tenant?: string): Promise<string[]> {
    const keys: string[] = [];
    for (const k of await kvKeys(this.fabric.jsm, ServiceBuckets.services, tenant === undefined ? undefined : `${tenant}.*`)) keys.push(k);
    return keys;
  }

  /** Every service of every tenant with its instances, read fresh, in key order. */
  async all(): Promise<ServiceState[]> {
    const out: ServiceState[] = [];
    for (const k of (await this.keys()).sort()) {
      const c = await this.read(k, true).catch(() => undefined);
      if (c) out.push({ record: c.record, instances: c.instances });
    }
    return out;
  }

  /** A service and its instances as this gateway knows them (cached; the placements watch keeps it current). */
  async state(tenant: string, name: string): Promise<ServiceState> {
    const c = await this.read(serviceKey(tenant, name));
    return { record: c.record, instances: c.instances };
  }

  /** Stores a new service with no instances; false when one of that key exists. */
  async create(key: string, record: ServiceRecord): Promise<boolean> {
    try {
      await this.services.create(key, encode(record));
    } catch {
      return false;
    }
    await this.placements.put(key, encode([] as ServiceInstanceRecord[]));
    this.cache.set(key, { record, instances: [], readAt: Date.now() });
    return true;
  }

  /** Replaces a service's record (its placements are kept). */
  async putRecord(key: string, record: ServiceRecord): Promise<void> {
    await this.services.put(key, encode(record));
    const c = this.cache.get(key);
    if (c) c.record = record;
  }

  /** Deletes a service's record; its placements stay until deletePlacements (its instances are destroyed in between). */
  async deleteRecord(key: string): Promise<void> {
    await this.services.delete(key);
    this.cache.delete(key);
  }

  async deletePlacements(key: string): Promise<void> {
    await this.placements.delete(key);
  }

  /** Runs `work` after every earlier locked work of the service on this gateway has ended. */
  locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(work, work);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  /** Resolves at the next change of the service's placements the watch delivers, or after `maxMs`. */
  async placementChange(key: string, maxMs: number): Promise<void> {
    let wake = () => {};
    const changed = new Promise<void>((resolve) => (wake = resolve));
    let waiters = this.placementWaiters.get(key);
    if (!waiters) this.placementWaiters.set(key, (waiters = new Set()));
    waiters.add(wake);
    await Promise.race([changed, new Promise((r) => setTimeout(r, maxMs))]);
    waiters.delete(wake);
    if (waiters.size === 0) this.placementWaiters.delete(key);
  }

  /**
   * Writes what `next` changes against `base` (the list the caller read): its
   * removals and additions, applied to the placements as they are now by
   * compare-and-set, so that what another gateway wrote meanwhile (a
   * migration's new host, a mark) is kept rather than overwritten.
   */
  async writeInstances(key: string, record: ServiceRecord, next: ServiceInstanceRecord[], base: ServiceInstanceRecord[]): Promise<void> {
    const removed = new Set(base.filter((b) => !next.some((n) => n.id === b.id)).map((b) => b.id));
    const added = next.filter((n) => !base.some((b) => b.id === n.id));
    await this.updatePlacements(key, record, `the placements of ${key}`, (current) =>
      [...current.filter((i) => !removed.has(i.id)), ...added.filter((a) => !current.some((i) => i.id === a.id))]);
  }

  /** Rewrites one instance's placement by compare-and-set (another gateway may write the record meanwhile). */
  async changeInstance(key: string, instanceId: string, change: (i: ServiceInstanceRecord) => ServiceInstanceRecord): Promise<void> {
    const { record } = await this.read(key, true);
    await this.updatePlacements(key, record, `the placement of instance ${instanceId}`, (instances) => {
      if (!instances.some((i) => i.id === instanceId)) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
      return instances.map((i) => (i.id === instanceId ? change(i) : i));
    });
  }

  /** Applies `change` to the placements as stored, by compare-and-set (read again and retried when another writer came first). */
  private async updatePlacements(key: string, record: ServiceRecord, what: string, change: (current: ServiceInstanceRecord[]) => ServiceInstanceRecord[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const e = await this.placements.get(key);
      const next = change(e && e.operation === 'PUT' && e.value.length > 0 ? decodeOrRefuse('ServiceInstanceRecords', e.value, key, 'internal') : []);
      try {
        await this.placements.update(key, encode(next), e?.revision ?? 0);
      } catch (err) {
        if (attempt < 5) continue;
        throw new FlurryError('unavailable', `could not update ${what}: ${(err as Error).message}`);
      }
      this.cache.set(key, { record, instances: next, readAt: Date.now() });
      return;
    }
  }
}
