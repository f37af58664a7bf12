/**
 * The services API's records (docs/services.md): create, list, read, change
 * and delete a service, with the checks of its fields and of the tenant's
 * instance quota, and the view the API shows. Making the instances a record
 * asks for is instance-scaling.ts's.
 */
import { FlurryError, NAME_PATTERN, serviceKey, type FunctionRecord, type InitDataRef, type ServiceInstanceRecord, type ServiceRecord } from '@flurry/core';
import { checkServiceInstances } from '../quotas/service-instances.js';
import type { InstanceScaling } from './instance-scaling.js';
import type { RequestCounts } from './request-counts.js';
import { serviceKeyOf, type ServiceStore } from './service-store.js';

/** Upper bound on instances of one service in this first slice. */
export const MAX_INSTANCES = 64;
/** Init input kept in the service record (JetStream KV values stay well under 1 MiB). */
export const MAX_INIT_BYTES = 256 * 1024;

/** A service as `POST /v1/services` asks for it: the body's fields as they came, checked by ServiceRecords.create. */
export interface CreateServiceBody {
  name: unknown;
  function: unknown;
  min?: unknown;
  max?: unknown;
  targetConcurrency?: unknown;
  /** The init input of the instances' parent (decoded from the API's base64). */
  init?: Uint8Array;
  /** Or an uploaded object as the init input (resolved from the API's `initData` name). */
  initData?: InitDataRef;
}

export interface ServiceView extends Omit<ServiceRecord, 'init' | 'initData'> {
  /** The init input, base64 (as given). */
  init?: string;
  /** The uploaded init input's name. */
  initData?: string;
  instances: { id: string; host: string; inFlight: number; createdAt: number; migrating?: ServiceInstanceRecord['migrating'] }[];
}

export interface ServiceRecordsDeps {
  store: ServiceStore;
  scaling: InstanceScaling;
  counts: RequestCounts;
  getFunction: (tenant: string, name: string) => Promise<FunctionRecord>;
  /** Instances a tenant's services may scale to together, the sum of their max (FLURRY_QUOTA_SERVICE_INSTANCES); 0 or absent: no limit. */
  instanceQuota?: number;
}

export class ServiceRecords {
  constructor(private readonly deps: ServiceRecordsDeps) {}

  async create(tenant: string, spec: CreateServiceBody): Promise<ServiceView> {
    if (typeof spec.name !== 'string' || !NAME_PATTERN.test(spec.name)) throw new FlurryError('bad_request', 'name must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit');
    if (typeof spec.function !== 'string' || spec.function === '') throw new FlurryError('bad_request', 'function is required (the name of a deployed function)');
    const fn = await this.deps.getFunction(tenant, spec.function).catch((err: unknown) => {
      if (err instanceof FlurryError && (err.code === 'not_found' || err.code === 'bad_request')) {
        throw new FlurryError('not_found', `cannot create service "${spec.name}": function "${spec.function}" is not deployed`);
      }
      throw err;
    });
    const min = intField(spec.min, 'min', 1, 0);
    const max = intField(spec.max, 'max', min, 1);
    const targetConcurrency = intField(spec.targetConcurrency, 'targetConcurrency', 8, 1);
    checkBounds(min, max);
    await this.checkInstanceQuota(tenant, spec.name, max);
    if (spec.init && spec.initData) throw new FlurryError('bad_request', 'give "init" or "initData", not both');
    if (spec.init && spec.init.length > MAX_INIT_BYTES) throw new FlurryError('bad_request', `init is ${spec.init.length} bytes; at most ${MAX_INIT_BYTES} (it is kept in the service record)`);
    const now = Date.now();
    const record: ServiceRecord = {
      tenant, name: spec.name, function: fn.name, digest: fn.digest, min, max, targetConcurrency,
      ...(spec.init && spec.init.length > 0 ? { init: spec.init } : {}), ...(spec.initData ? { initData: spec.initData } : {}), createdAt: now, updatedAt: now,
    };
    if (!(await this.deps.store.create(serviceKey(tenant, spec.name), record))) throw new FlurryError('conflict', `service "${spec.name}" already exists`);
    void this.deps.scaling.reconcile(tenant, spec.name, 'created');
    return this.view(record, []);
  }

  async list(tenant: string): Promise<ServiceView[]> {
    const out: ServiceView[] = [];
    for (const k of (await this.deps.store.keys(tenant)).sort()) {
      const c = await this.deps.store.read(k, true).catch(() => undefined);
      if (c) out.push(this.view(c.record, c.instances));
    }
    return out;
  }

  async get(tenant: string, name: string): Promise<ServiceView> {
    const c = await this.deps.store.read(serviceKeyOf(tenant, name), true);
    return this.view(c.record, c.instances);
  }

  async update(tenant: string, name: string, patch: Partial<Pick<ServiceRecord, 'min' | 'max' | 'targetConcurrency'>>): Promise<ServiceView> {
    const { store } = this.deps;
    const key = serviceKeyOf(tenant, name);
    const record = await store.locked(key, async () => {
      const { record } = await store.read(key, true);
      const min = intField(patch.min, 'min', record.min, 0);
      const max = intField(patch.max, 'max', patch.min !== undefined && patch.max === undefined ? Math.max(record.max, min) : record.max, 1);
      const targetConcurrency = intField(patch.targetConcurrency, 'targetConcurrency', record.targetConcurrency, 1);
      checkBounds(min, max);
      // Lowering a max is always allowed, also for a tenant above its quota (the quota was lowered).
      if (max > record.max) await this.checkInstanceQuota(tenant, name, max);
      const next: ServiceRecord = { ...record, min, max, targetConcurrency, updatedAt: Date.now() };
      await store.putRecord(key, next);
      return next;
    });
    await this.deps.scaling.reconcile(tenant, name, 'updated');
    const c = await store.read(key, true);
    return this.view(record, c.instances);
  }

  async delete(tenant: string, name: string): Promise<void> {
    const { store } = this.deps;
    const key = serviceKeyOf(tenant, name);
    await store.locked(key, async () => {
      const { instances } = await store.read(key, true);
      await store.deleteRecord(key);
      await Promise.all(instances.map((i) => this.deps.scaling.destroy(tenant, name, i)));
      await store.deletePlacements(key);
    });
  }

  /** Refuses (`quota_exceeded`) service `name` at `max` when the tenant's services together could then pass the instance quota. */
  private async checkInstanceQuota(tenant: string, name: string, max: number): Promise<void> {
    const quota = this.deps.instanceQuota ?? 0;
    if (quota === 0) return;
    const services: ServiceRecord[] = [];
    for (const k of await this.deps.store.keys(tenant)) {
      const c = await this.deps.store.read(k, true).catch(() => undefined);
      if (c) services.push(c.record);
    }
    checkServiceInstances(quota, services, name, max);
  }

  private view(record: ServiceRecord, instances: ServiceInstanceRecord[]): ServiceView {
    const { init, initData, ...rest } = record;
    return {
      ...rest,
      ...(init ? { init: Buffer.from(init).toString('base64') } : {}),
      ...(initData ? { initData: initData.name } : {}),
      instances: instances.map((i) => ({ id: i.id, host: i.host, inFlight: this.deps.counts.inFlight(i.id), createdAt: i.createdAt, ...(i.migrating ? { migrating: i.migrating } : {}) })),
    };
  }
}

function intField(value: unknown, field: string, fallback: number, least: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < least || value > MAX_INSTANCES * 64) {
    throw new FlurryError('bad_request', `${field} must be an integer of at least ${least}`);
  }
  return value;
}

function checkBounds(min: number, max: number): void {
  if (max < min) throw new FlurryError('bad_request', `max (${max}) must be at least min (${min})`);
  if (max > MAX_INSTANCES) throw new FlurryError('bad_request', `max must be at most ${MAX_INSTANCES}`);
}
