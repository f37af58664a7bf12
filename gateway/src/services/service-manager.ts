/**
 * Services (docs/services.md): named sets of persistent instances of a
 * function, kept between `min` and `max`, with HTTP requests routed to them.
 * Service records and instance placements live in JetStream KV, so any
 * gateway can serve the API and route; in-flight counts are this gateway's own.
 */
import { createHash } from 'node:crypto';
import { RequestError, TimeoutError } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import {
  decodeChecked, decodeOrRefuse, encode, FlurryError, followKv, isBrokerFailure, kvKeys, MigrationSubjects, NAME_PATTERN, newId, openKv, serviceKey, ServiceBuckets, ServiceSubjects,
  type MigrateInstanceReply, type MigrateInstanceRequest, type MigrationReportWire,
  type CreateInstanceReply, type CreateInstanceRequest, type DestroyInstanceRequest, type Fabric, type FunctionRecord,
  type HostRecord, type InitDataRef, type InvokeReply, type InvokeRequest, type Logger, type ServiceInstanceRecord, type ServiceLoad, type ServiceRecord,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { HOSTS_TRIED } from '../planning/best-of.js';
import { serviceInstanceHosts } from '../planning/instance-hosts.js';
import { checkServiceInstances } from '../quotas/service-instances.js';
import { HostAway, resendWaitMs, shouldResend, type AttemptEnd } from './request-resend.js';

export type InvokeResult = Extract<InvokeReply, { ok: true }>;

/** Upper bound on instances of one service in this first slice. */
export const MAX_INSTANCES = 64;
const CACHE_MS = 1000;
/** Init input kept in the service record (JetStream KV values stay well under 1 MiB). */
export const MAX_INIT_BYTES = 256 * 1024;
/** A `migrating` mark older than this is taken for the leftover of a gateway that died mid-migration (a migration answers within 5 minutes). */
const MIGRATION_MARK_MS = 6 * 60_000;
/** A request that finds nobody serving a migrating instance waits at most this long for the migration to end. */
const MIGRATION_WAIT_MS = 30_000;
/** A service call that arrives while this gateway is reconnecting waits this long for the broker before it is refused. */
const RECONNECT_HOLD_MS = 2000;
/** A resend that found its instance's host not subscribed (reconnecting to another node) tries again after this. */
const RESEND_PAUSE_MS = 100;
/** What an attempt's wait rejects with when this gateway's broker connection drops. */
const GATEWAY_OUTAGE = Symbol('gateway broker outage');
const isTimeout = (err: unknown) => err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError);

/** How an attempt's wait failed, if it is one of the ways an attempt ends (anything else is thrown on). */
function attemptEnd(err: unknown): AttemptEnd | undefined {
  if (err === GATEWAY_OUTAGE) return 'gateway-outage';
  if (err instanceof HostAway) return err.end;
  if (err instanceof RequestError && err.isNoResponders()) return 'no-responders';
  if (err instanceof TimeoutError || err instanceof RequestError) return 'broker-error';
  return undefined;
}

export interface ServiceSpec {
  name: string;
  function: string;
  min?: number;
  max?: number;
  targetConcurrency?: number;
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

export interface MigrateOptions {
  downtimeBudgetMs?: number;
  /** 0: stop-and-copy only. */
  maxRounds?: number;
  /** Compare memory hashes of source and target at the commit (adds the hashing to the pause). */
  verify?: boolean;
}

export interface ServiceManagerDeps {
  fabric: Fabric;
  fleet: FleetView;
  getFunction: (tenant: string, name: string) => Promise<FunctionRecord>;
  invokeTimeoutMs: number;
  createTimeoutMs: number;
  /** A host counts as live this long after its last heartbeat (FLURRY_HOST_TTL_S). */
  hostTtlMs: number;
  /** An instance whose host is silent this long past its TTL is replaced, its state lost (FLURRY_INSTANCE_LOST_MS). */
  instanceLostMs: number;
  log: Logger;
  /** Called whenever this gateway's requests in flight or held change (the load reporter publishes them). */
  onLoadChange?: () => void;
  /** Instances a tenant's services may scale to together, the sum of their max (FLURRY_QUOTA_SERVICE_INSTANCES); 0 or absent: no limit. */
  instanceQuota?: number;
}

interface Cached {
  record: ServiceRecord;
  instances: ServiceInstanceRecord[];
  readAt: number;
}

export class ServiceManager {
  private readonly cache = new Map<string, Cached>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** A reconcile under way per service: requests arriving with no instance wait for it. */
  private readonly scaling = new Map<string, Promise<void>>();
  private readonly inFlight = new Map<string, number>();
  /** The service key of each instance with requests in flight here, and requests held per service. */
  private readonly inFlightService = new Map<string, string>();
  private readonly held = new Map<string, number>();
  /** Requests waiting for a service's placements to change (its first instance). */
  private readonly placementWaiters = new Map<string, Set<() => void>>();
  private readonly turn = new Map<string, number>();

  private constructor(
    private readonly deps: ServiceManagerDeps,
    private readonly services: KV,
    private readonly placements: KV,
  ) {}

  static async open(deps: ServiceManagerDeps): Promise<ServiceManager> {
    const [services, placements] = await Promise.all([
      openKv(deps.fabric, 'services'),
      openKv(deps.fabric, 'serviceInstances'),
    ]);
    const manager = new ServiceManager(deps, services, placements);
    await manager.watchPlacements();
    return manager;
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
    }, this.deps.log, 'placements', () => this.deps.fabric.nc.isClosed(), this.deps.fabric.link);
  }

  // ---- API

  async create(tenant: string, spec: ServiceSpec): Promise<ServiceView> {
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
    const key = serviceKey(tenant, spec.name);
    try {
      await this.services.create(key, encode(record));
    } catch {
      throw new FlurryError('conflict', `service "${spec.name}" already exists`);
    }
    await this.placements.put(key, encode([] as ServiceInstanceRecord[]));
    this.cache.set(key, { record, instances: [], readAt: Date.now() });
    this.scale(tenant, spec.name, 'created');
    return this.view(record, []);
  }

  async list(tenant: string): Promise<ServiceView[]> {
    const keys: string[] = [];
    for (const k of await kvKeys(this.deps.fabric.jsm, ServiceBuckets.services, `${tenant}.*`)) keys.push(k);
    const out: ServiceView[] = [];
    for (const k of keys.sort()) {
      const c = await this.read(k, true).catch(() => undefined);
      if (c) out.push(this.view(c.record, c.instances));
    }
    return out;
  }

  async get(tenant: string, name: string): Promise<ServiceView> {
    const c = await this.read(serviceKey(tenant, checkName(name)), true);
    return this.view(c.record, c.instances);
  }

  async update(tenant: string, name: string, patch: Partial<Pick<ServiceRecord, 'min' | 'max' | 'targetConcurrency'>>): Promise<ServiceView> {
    const key = serviceKey(tenant, checkName(name));
    const record = await this.locked(key, async () => {
      const { record } = await this.read(key, true);
      const min = intField(patch.min, 'min', record.min, 0);
      const max = intField(patch.max, 'max', patch.min !== undefined && patch.max === undefined ? Math.max(record.max, min) : record.max, 1);
      const targetConcurrency = intField(patch.targetConcurrency, 'targetConcurrency', record.targetConcurrency, 1);
      checkBounds(min, max);
      // Lowering a max is always allowed, also for a tenant above its quota (the quota was lowered).
      if (max > record.max) await this.checkInstanceQuota(tenant, name, max);
      const next: ServiceRecord = { ...record, min, max, targetConcurrency, updatedAt: Date.now() };
      await this.services.put(key, encode(next));
      const c = this.cache.get(key);
      if (c) c.record = next;
      return next;
    });
    await this.scale(tenant, name, 'updated');
    const c = await this.read(key, true);
    return this.view(record, c.instances);
  }

  async delete(tenant: string, name: string): Promise<void> {
    const key = serviceKey(tenant, checkName(name));
    await this.locked(key, async () => {
      const { instances } = await this.read(key, true);
      await this.services.delete(key);
      this.cache.delete(key);
      await Promise.all(instances.map((i) => this.destroyInstance(tenant, name, i)));
      await this.placements.delete(key);
    });
  }

  /** Sends one HTTP request to an instance of the service: sticky by `routeKey`, else least in flight. */
  async forward(tenant: string, name: string, build: (record: ServiceRecord) => InvokeRequest, routeKey?: string, retried = false): Promise<InvokeResult & { instanceId: string }> {
    const key = serviceKey(tenant, checkName(name));
    const deadline = Date.now() + this.deps.invokeTimeoutMs;
    // Held while this gateway reconnects (to another node of a cluster: milliseconds), not refused at once;
    // a broker away for longer refuses it 503 (it has sent nothing yet).
    await this.deps.fabric.link.whenUp(Math.min(RECONNECT_HOLD_MS, this.deps.invokeTimeoutMs));
    let c = await this.readForRouting(key);
    if (c.instances.length === 0) {
      // Held while the first instances start (up to min here, or by the autoscaler, which sees held requests), not refused.
      this.changeLoad(this.held, key, 1);
      try {
        await (this.scaling.get(key) ?? this.scale(tenant, name, 'request'));
        c = await this.read(key, true);
        if (c.instances.length === 0 && c.record.max > 0) c = await this.waitForInstance(key, this.deps.createTimeoutMs);
      } finally {
        this.changeLoad(this.held, key, -1);
      }
      if (c.instances.length === 0) throw new FlurryError('unavailable', `service "${name}" has no running instance`, { retryAfterSeconds: 1 });
    }
    const inst = routeKey ? rendezvous(routeKey, c.instances) : this.leastLoaded(key, c.instances);
    const req = build(c.record);
    this.inFlightService.set(inst.id, key);
    this.changeLoad(this.inFlight, inst.id, 1);
    try {
      const data = await this.send(tenant, name, inst, req, deadline);
      if (data === 'no-responders') {
        this.cache.delete(key);
        if (!retried) {
          // Nobody serves the instance's subject. While it migrates, the migration settles who has it: hold the
          // request until then. Otherwise hold it until its host's heartbeats tell: a host that beats again and
          // lists the instance has it (it was reconnecting after a broker outage: its state is there); a host
          // that no longer lists it, or silent past the grace, lost it: it is replaced (its state is lost); a
          // host silent for less (paused, cut off: it may come back with the state) leaves it unavailable.
          if (!(await this.migrationSettled(key, inst.id))) {
            const verdict = await this.instanceVerdict(inst);
            if (verdict === 'unknown') {
              throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}" is not answering: its host ${inst.host} stopped heartbeating; the instance is replaced (its state lost) if the host stays away ${Math.round(this.deps.instanceLostMs / 1000)} s`, { retryAfterSeconds: 1 });
            }
            if (verdict === 'lost') await this.replaceLost(tenant, name, inst.id);
          }
          return await this.forward(tenant, name, build, routeKey, true);
        }
        throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}" is not answering (its host may be gone)`, { retryAfterSeconds: 1 });
      }
      const reply = decodeOrRefuse('InvokeReply', data, undefined, 'unavailable');
      if (!reply.ok) throw FlurryError.fromWire(reply.error);
      return { ...reply, instanceId: inst.id };
    } finally {
      this.changeLoad(this.inFlight, inst.id, -1);
      if (!this.inFlight.has(inst.id)) this.inFlightService.delete(inst.id);
    }
  }

  /**
   * Sends `req` to the instance and resolves to the answer's bytes, or
   * `no-responders` when nobody served its subject at the first attempt.
   * An attempt whose outcome a broker connection's loss made unknown is sent
   * again, same requestId, where the instance is now, until the invoke
   * timeout (request-resend.ts): the host answers an id once.
   */
  private async send(tenant: string, name: string, inst: ServiceInstanceRecord, req: InvokeRequest, deadline: number): Promise<Uint8Array | 'no-responders'> {
    const { link } = this.deps.fabric;
    const subject = ServiceSubjects.request(tenant, name, inst.id);
    const payload = encode(req);
    let host = inst.host;
    for (let attempts = 1; ; attempts++) {
      const outagesBefore = link.outages;
      const outage = link.nextOutage();
      let end: AttemptEnd | undefined;
      let error: unknown;
      // Each attempt waits a while, not until the deadline: a copy lost where no connection of ours dropped is sent again.
      const untilDeadline = deadline - Date.now();
      const wait = Math.max(1, Math.min(untilDeadline, resendWaitMs(attempts)));
      try {
        return (await this.whileHostLive(host, Promise.race([this.deps.fabric.nc.request(subject, payload, { timeout: wait }), outage.outage.catch(() => Promise.reject(GATEWAY_OUTAGE))]))).data;
      } catch (err) {
        error = err;
        end = attemptEnd(err);
        if (!end) throw err;
        if (end === 'broker-error' && isTimeout(err) && wait < untilDeadline) end = 'unanswered';
      } finally {
        outage.cancel();
      }
      const resending = attempts > 1;
      if (end === 'no-responders' && !resending) return 'no-responders';
      if (!shouldResend({ end, outageDuring: link.outages !== outagesBefore || !link.connected, resending, msLeft: deadline - Date.now() })) {
        if ((end === 'broker-error' || end === 'unanswered') && isTimeout(error)) throw new FlurryError('timeout', `no answer from instance ${inst.id} within ${this.deps.invokeTimeoutMs} ms${resending ? ` (sent ${attempts} times)` : ''}`);
        if (error instanceof HostAway && end === 'host-gone') throw error;
        throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}": ${end === 'gateway-outage' ? 'the connection to the fleet\'s message broker was lost while this request was in flight' : (error as Error).message}${resending ? ` (sent ${attempts} times until the request's deadline)` : ''}; its outcome is unknown`, { retryAfterSeconds: 1 });
      }
      // Unanswered for a while is the common case of a slow request: not worth a warning each time.
      this.deps.log[end === 'unanswered' ? 'debug' : 'warn']({ requestId: req.requestId, instanceId: inst.id, hostId: host, attempt: attempts, why: end, err: (error as Error).message }, 'service request outcome unknown; sending it again (the host answers an id once)');
      const next = await this.instanceNow(tenant, name, inst.id, deadline, end === 'no-responders');
      if (!next) throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}" is gone while its request's outcome was unknown`, { retryAfterSeconds: 1 });
      host = next.host;
    }
  }

  /**
   * Where the instance is now, for a resend: once this gateway is connected,
   * after a short pause when its host was not subscribed yet, from the
   * placements (it may have migrated meanwhile; the cached copy when the
   * store does not answer). Undefined once it is not placed any more.
   */
  private async instanceNow(tenant: string, name: string, instanceId: string, deadline: number, pause: boolean): Promise<ServiceInstanceRecord | undefined> {
    await this.deps.fabric.link.whenUp(Math.max(1, deadline - Date.now())).catch(() => undefined);
    if (pause) await new Promise((r) => setTimeout(r, Math.min(RESEND_PAUSE_MS, Math.max(0, deadline - Date.now()))));
    const key = serviceKey(tenant, name);
    const c = await this.read(key, true).catch(() => this.cache.get(key));
    return c?.instances.find((i) => i.id === instanceId);
  }

  // ---- load (for the autoscaler: docs/autoscaling.md)

  /** This gateway's requests in flight per instance and held per service, for services with any. */
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
    for (const [id, n] of this.inFlight) {
      const key = this.inFlightService.get(id);
      if (key) entry(key).instances[id] = n;
    }
    return [...out.values()];
  }

  private changeLoad(counts: Map<string, number>, id: string, delta: number): void {
    const n = (counts.get(id) ?? 0) + delta;
    if (n <= 0) counts.delete(id);
    else counts.set(id, n);
    this.deps.onLoadChange?.();
  }

  /** Resolves with the service's state once it has an instance, or as it is at the timeout. */
  private async waitForInstance(key: string, timeoutMs: number): Promise<Cached> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = await this.read(key, true);
      const left = deadline - Date.now();
      if (c.instances.length > 0 || left <= 0) return c;
      let wake = () => {};
      const changed = new Promise<void>((resolve) => (wake = resolve));
      let waiters = this.placementWaiters.get(key);
      if (!waiters) this.placementWaiters.set(key, (waiters = new Set()));
      waiters.add(wake);
      // The periodic re-read covers a watch that missed an update.
      await Promise.race([changed, new Promise((r) => setTimeout(r, Math.min(left, 1000)))]);
      waiters.delete(wake);
      if (waiters.size === 0) this.placementWaiters.delete(key);
    }
  }

  // ---- migration

  /**
   * Live-migrates an instance to `target` (default: the live host with most
   * free guest slots other than its own); the source host drives it
   * (docs/services.md, "Migration") and the placement record follows. A
   * `migrating` mark set by compare-and-set on the placement record keeps a
   * second migration of the instance (from any gateway) out until this one
   * commits or aborts. `tenant` scopes the search to one tenant's
   * instances (a user's request); undefined searches every tenant's (an admin's).
   */
  async migrate(tenant: string | undefined, instanceId: string, target?: string, opts: MigrateOptions = {}): Promise<MigrationReportWire & { placementMs: number }> {
    if (target !== undefined && (typeof target !== 'string' || target === '')) throw new FlurryError('bad_request', 'target must be a host id');
    const keys: string[] = [];
    for (const k of await kvKeys(this.deps.fabric.jsm, ServiceBuckets.services, tenant === undefined ? undefined : `${tenant}.*`)) keys.push(k);
    for (const key of keys) {
      const c = await this.read(key, true).catch(() => undefined);
      if (!c?.instances.some((i) => i.id === instanceId)) continue;
      const requestId = newId('req');
      const { record, inst, to } = await this.locked(key, async () => {
        const fresh = await this.read(key, true);
        const found = fresh.instances.find((i) => i.id === instanceId);
        if (!found) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
        const live = this.deps.fleet.live().filter((h) => !h.draining && h.id !== found.host);
        const chosen = target ?? live.sort((a, b) => b.guestSlots - b.runningGuests - (a.guestSlots - a.runningGuests) || a.id.localeCompare(b.id))[0]?.id;
        if (!chosen) throw new FlurryError('no_capacity', 'no other live host to migrate to', { retryAfterSeconds: 1 });
        if (chosen === found.host) throw new FlurryError('bad_request', `instance ${instanceId} is on host ${chosen} already`);
        if (!live.some((h) => h.id === chosen)) throw new FlurryError('bad_request', `host ${chosen} is not a live host that takes instances`);
        await this.changeInstance(key, instanceId, (i) => {
          if (i.migrating && Date.now() - i.migrating.since < MIGRATION_MARK_MS) {
            throw new FlurryError('conflict', `instance ${instanceId} is being migrated already (to host ${i.migrating.target}, for ${Math.round((Date.now() - i.migrating.since) / 1000)} s)`);
          }
          return { ...i, migrating: { target: chosen, since: Date.now(), migrationRequest: requestId } };
        });
        return { record: fresh.record, inst: found, to: chosen };
      });
      let reply: MigrateInstanceReply;
      let answered = false;
      try {
        const req: MigrateInstanceRequest = { requestId, tenant: record.tenant, service: record.name, instanceId, name: record.function, digest: inst.digest, target: to, ...opts };
        const asked = this.deps.fabric.nc.request(MigrationSubjects.migrate(inst.host), encode(req), { timeout: 5 * 60_000 });
        let watch: NodeJS.Timeout | undefined;
        // A source that dies mid-migration never answers: give up once its heartbeats stop, or it was restarted.
        const incarnation = this.deps.fleet.incarnation(inst.host);
        const sourceGone = new Promise<never>((_, reject) => {
          watch = setInterval(() => {
            if (!this.deps.fleet.live().some((h) => h.id === inst.host)) reject(new Error(`host ${inst.host} stopped heartbeating`));
            else if (this.deps.fleet.incarnation(inst.host) !== incarnation) reject(new Error(`host ${inst.host} restarted`));
          }, 500);
        });
        // The source's answer is lost in a broker outage: stop waiting for it then.
        const outage = this.deps.fabric.link.nextOutage();
        try {
          reply = decodeOrRefuse('MigrateInstanceReply', (await Promise.race([asked, sourceGone, outage.outage])).data);
        } catch (err) {
          throw new FlurryError('unavailable', `source host ${inst.host} did not answer the migration: ${(err as Error).message}`, { retryAfterSeconds: 1 });
        } finally {
          clearInterval(watch);
          outage.cancel();
        }
        answered = true;
        if (!reply.ok) throw FlurryError.fromWire(reply.error);
      } catch (err) {
        // Without the source's answer the outcome is unknown: the hosts' records say who holds the instance once it settles.
        const owner = answered ? undefined : await this.settledOwner(instanceId, [inst.host, to]);
        await this.locked(key, () => this.changeInstance(key, instanceId, (i) => (i.migrating?.migrationRequest === requestId ? { ...withoutMark(i), ...(owner ? { host: owner } : {}) } : i)))
          .catch((e: unknown) => this.deps.log.warn({ instanceId, err: (e as Error).message }, 'clearing a migration mark failed'));
        if (owner) this.deps.log.warn({ instanceId, source: inst.host, target: to, owner, err: (err as Error).message }, 'migration answer lost; the hosts say who holds the instance');
        if (owner === to) throw new FlurryError('unavailable', `the migration's answer was lost (${(err as Error).message}); it committed: instance ${instanceId} is on host ${to} now`, { retryAfterSeconds: 1 });
        throw err;
      }
      // Routing does not wait for this: the instance's subject has no host in it, and the target serves it already.
      const placed = performance.now();
      await this.locked(key, () => this.changeInstance(key, instanceId, (i) => ({ ...withoutMark(i), host: to })));
      const placementMs = performance.now() - placed;
      this.deps.log.info({ service: `${record.tenant}/${record.name}`, instanceId, source: inst.host, target: to, downtimeMs: reply.report.downtimeMs }, 'service instance migrated');
      return { ...reply.report, placementMs };
    }
    throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
  }

  /**
   * After a migration whose answer was lost: which of `candidates` holds the
   * instance, once each of them has either heartbeat since (after the broker
   * is back) or been silent past the instance grace (gone for good: a paused
   * source may still run the migration when it resumes), and at most one
   * lists it, not migrating any more. Undefined when none holds it (its
   * holder died), or when that does not settle within `withinMs`.
   */
  private async settledOwner(instanceId: string, candidates: string[], withinMs = 60_000): Promise<string | undefined> {
    const until = Date.now() + withinMs;
    await this.deps.fabric.link.whenUp(withinMs).catch(() => undefined);
    const since = Date.now();
    while (Date.now() < until) {
      const live = this.deps.fleet.live().filter((h) => candidates.includes(h.id));
      const accounted = candidates.every((id) => live.some((h) => h.id === id && h.heartbeatAt > since) || this.deps.fleet.silentLongerThan(id, this.deps.instanceLostMs));
      if (accounted) {
        const holding = live.filter((h) => h.instances?.some((i) => i.instanceId === instanceId));
        if (holding.length === 0) return undefined;
        if (holding.length === 1 && !holding[0]!.instances!.find((i) => i.instanceId === instanceId)!.migrating) return holding[0]!.id;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  }

  /**
   * Makes the placements agree with the hosts (the controller calls it now
   * and then): an instance that is not migrating, whose record names a host
   * that does not list it while exactly one live host does, is placed there.
   * A safety net for a migration whose outcome the gateway never learned.
   */
  async repairPlacements(services: { record: ServiceRecord; instances: ServiceInstanceRecord[] }[]): Promise<void> {
    const hosts = this.deps.fleet.live();
    for (const { record, instances } of services) {
      const key = serviceKey(record.tenant, record.name);
      for (const inst of instances) {
        if (inst.migrating) continue;
        const listing = hosts.filter((h) => h.instances?.some((i) => i.instanceId === inst.id && !i.migrating));
        if (listing.length !== 1 || listing[0]!.id === inst.host || hosts.some((h) => h.id === inst.host && h.instances?.some((i) => i.instanceId === inst.id))) continue;
        const owner = listing[0]!.id;
        this.deps.log.warn({ service: `${record.tenant}/${record.name}`, instanceId: inst.id, recorded: inst.host, owner }, 'placement repaired: the instance is on another host than its record said');
        await this.locked(key, () => this.changeInstance(key, inst.id, (i) => (i.migrating || i.host !== inst.host ? i : { ...i, host: owner })))
          .catch((err: unknown) => this.deps.log.warn({ instanceId: inst.id, err: (err as Error).message }, 'repairing a placement failed'));
      }
    }
  }

  /** Rewrites one instance's placement by compare-and-set (another gateway may write the record meanwhile). */
  private async changeInstance(key: string, instanceId: string, change: (i: ServiceInstanceRecord) => ServiceInstanceRecord): Promise<void> {
    const { record } = await this.read(key, true);
    await this.updatePlacements(key, record, `the placement of instance ${instanceId}`, (instances) => {
      if (!instances.some((i) => i.id === instanceId)) throw new FlurryError('not_found', `instance ${instanceId} does not exist`);
      return instances.map((i) => (i.id === instanceId ? change(i) : i));
    });
  }

  /**
   * True when the instance was being migrated (its request found nobody
   * serving it meanwhile) and the migration has ended since: waits for it to
   * commit or abort, at most MIGRATION_WAIT_MS (a mark left longer is taken
   * for a lost instance's).
   */
  private async migrationSettled(key: string, instanceId: string): Promise<boolean> {
    const marked = async () => (await this.read(key, true).catch(() => undefined))?.instances.find((i) => i.id === instanceId)?.migrating;
    if (!(await marked())) return false;
    const until = Date.now() + MIGRATION_WAIT_MS;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      if (!(await marked())) return true;
    }
    return false;
  }

  /**
   * `work`, unless `hostId` stops heartbeating first (paused or cut off with the
   * request), restarts (the request died with it) or reports a lost broker
   * connection (the request or its reply may be lost): then HostAway at once
   * rather than at the timeout. The request's outcome is unknown: a paused
   * host may still answer it when it resumes; one that lost its broker
   * connection is asked again (send()).
   */
  private whileHostLive<T>(hostId: string, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const incarnation = this.deps.fleet.incarnation(hostId);
    const outages = this.deps.fleet.brokerOutages(hostId);
    const silent = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const live = this.deps.fleet.live().some((h) => h.id === hostId);
        const why = !live ? 'stopped heartbeating' : this.deps.fleet.incarnation(hostId) !== incarnation ? 'restarted'
          // Its node of a nats cluster was lost: the request or its reply may have been lost with it.
          : this.deps.fleet.brokerOutages(hostId) !== outages ? 'lost its broker connection' : undefined;
        if (why) reject(new HostAway(hostId, why));
      }, 250);
    });
    silent.catch(() => undefined);
    return Promise.race([work, silent]).finally(() => clearInterval(timer));
  }

  /**
   * What became of an instance that found no responder: `lost` once its host
   * has been silent past the grace (FLURRY_INSTANCE_LOST_MS after its TTL),
   * or beats (after `since`: its subscriptions are back then) without listing
   * it; `alive` when it beats and lists it; `unknown` while its host is
   * silent within the grace, or nothing is known a little past a TTL.
   */
  private async instanceVerdict(inst: ServiceInstanceRecord, since = Date.now()): Promise<'lost' | 'alive' | 'unknown'> {
    const until = since + this.deps.hostTtlMs + 2000;
    for (;;) {
      const host = this.deps.fleet.live().find((h) => h.id === inst.host);
      if (!host) return this.deps.fleet.silentLongerThan(inst.host, this.deps.instanceLostMs) ? 'lost' : 'unknown';
      if (host.heartbeatAt > since) return host.instances?.some((i) => i.instanceId === inst.id) ? 'alive' : 'lost';
      if (Date.now() > until) return 'unknown';
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ---- for the services controller (autoscaler.ts, consolidator.ts)

  /** Every service of every tenant with its instances, read fresh. */
  async all(): Promise<{ record: ServiceRecord; instances: ServiceInstanceRecord[] }[]> {
    const keys: string[] = [];
    for (const k of await kvKeys(this.deps.fabric.jsm, ServiceBuckets.services)) keys.push(k);
    const out: { record: ServiceRecord; instances: ServiceInstanceRecord[] }[] = [];
    for (const k of keys.sort()) {
      const c = await this.read(k, true).catch(() => undefined);
      if (c) out.push({ record: c.record, instances: c.instances });
    }
    return out;
  }

  /** A service and its instances as this gateway knows them (cached; the placements watch keeps it current). */
  async state(tenant: string, name: string): Promise<{ record: ServiceRecord; instances: ServiceInstanceRecord[] }> {
    const c = await this.read(serviceKey(tenant, name));
    return { record: c.record, instances: c.instances };
  }

  /**
   * Scale-out: creates one instance on each of `hosts` at once, up to `want`
   * instances in all (never beyond max); each is routed to as soon as it is
   * up. Resolves to the instances made.
   */
  async addInstances(tenant: string, name: string, hosts: HostRecord[], want: number, reason: string): Promise<ServiceInstanceRecord[]> {
    const key = serviceKey(tenant, name);
    return this.locked(key, async () => {
      const { record, instances } = await this.read(key, true);
      const made: ServiceInstanceRecord[] = [];
      let written = Promise.resolve();
      // Counted again under the lock: a reconcile that ran meanwhile (a new service's first instance) made some already.
      const missing = Math.min(want, record.max) - instances.length;
      await Promise.all(hosts.slice(0, Math.max(0, missing)).map(async (host, i) => {
        // Fall back to the other chosen hosts, then to the ranked ones.
        const order = [host, ...hosts.filter((h) => h.id !== host.id).slice(i), ...serviceInstanceHosts(this.deps.fleet.live(), instances)];
        const inst = await this.createInstanceOn(record, order).catch((err: unknown) => {
          this.deps.log.warn({ service: `${tenant}/${name}`, hostId: host.id, err: (err as Error).message }, 'scale-out instance failed');
          return undefined;
        });
        if (!inst) return;
        written = written.then(async () => {
          const now = await this.read(key, true);
          await this.writeInstances(key, now.record, [...now.instances, inst], now.instances);
          made.push(inst);
        });
        await written;
      }));
      this.deps.log.info({ service: `${tenant}/${name}`, reason, added: made.length, hosts: made.map((m) => m.host) }, 'service scaled out');
      return made;
    });
  }

  /**
   * Scale-in: takes the instances out of routing (never below min), waits
   * until `idle(id)` says no gateway has requests in flight to each (up to
   * the invoke timeout), then destroys them. Resolves to the ids removed.
   */
  async removeInstances(tenant: string, name: string, ids: string[], reason: string, idle: (instanceId: string) => boolean): Promise<string[]> {
    const key = serviceKey(tenant, name);
    const removed = await this.locked(key, async () => {
      const { record, instances } = await this.read(key, true);
      const victims = instances.filter((i) => ids.includes(i.id)).slice(0, Math.max(0, instances.length - record.min));
      if (victims.length > 0) await this.writeInstances(key, record, instances.filter((i) => !victims.includes(i)), instances);
      return victims;
    });
    // Requests already routed to a victim finish there; a later one finds no responder and is routed again.
    const deadline = Date.now() + this.deps.invokeTimeoutMs;
    await new Promise((r) => setTimeout(r, 100));
    while (removed.some((v) => !idle(v.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(removed.map((v) => this.destroyInstance(tenant, name, v)));
    if (removed.length > 0) this.deps.log.info({ service: `${tenant}/${name}`, reason, removed: removed.map((v) => v.id) }, 'service scaled in');
    return removed.map((v) => v.id);
  }

  // ---- scaling

  /** Forgets an instance nobody answers for, then scales back to min. */
  private async replaceLost(tenant: string, name: string, instanceId: string): Promise<void> {
    const key = serviceKey(tenant, name);
    await this.locked(key, async () => {
      const c = await this.read(key, true);
      if (!c.instances.some((i) => i.id === instanceId)) return;
      this.deps.log.warn({ service: `${tenant}/${name}`, instanceId }, 'service instance lost');
      await this.writeInstances(key, c.record, c.instances.filter((i) => i.id !== instanceId), c.instances);
    });
    await this.scale(tenant, name, 'instance lost');
  }

  /** Brings the service to at least min and at most max instances; one run at a time per service. */
  private scale(tenant: string, name: string, reason: string): Promise<void> {
    const key = serviceKey(tenant, name);
    const p = this.locked(key, () => this.reconcile(tenant, name, reason))
      .catch((err: unknown) => this.deps.log.warn({ service: `${tenant}/${name}`, err: (err as Error).message }, 'service scaling failed'))
      .finally(() => {
        if (this.scaling.get(key) === p) this.scaling.delete(key);
      });
    this.scaling.set(key, p);
    return p;
  }

  private async reconcile(tenant: string, name: string, reason: string): Promise<void> {
    const key = serviceKey(tenant, name);
    const c = await this.read(key, true).catch(() => undefined);
    if (!c) return;
    // Instances on a draining host still serve until they are migrated away; on a silent host they are kept
    // for the grace (it may be paused and come back with their state).
    let instances = c.instances.filter((i) => !this.deps.fleet.silentLongerThan(i.host, this.deps.instanceLostMs));
    let changed = instances.length !== c.instances.length;
    let lastError: unknown;
    while (instances.length < c.record.min) {
      const made = await this.createInstance(c.record, instances).catch((err: unknown) => {
        lastError = err;
        return undefined;
      });
      if (!made) break;
      instances = [...instances, made];
      changed = true;
      await this.writeInstances(key, c.record, instances, c.instances);
    }
    while (instances.length > c.record.max) {
      const victim = instances[instances.length - 1];
      instances = instances.slice(0, -1);
      changed = true;
      await this.destroyInstance(tenant, name, victim);
    }
    if (changed) await this.writeInstances(key, c.record, instances, c.instances);
    this.deps.log.info({ service: `${tenant}/${name}`, reason, instances: instances.length, min: c.record.min, max: c.record.max }, 'service scaled');
    if (lastError) throw lastError;
  }

  /**
   * Writes what `next` changes against `base` (the list the caller read): its
   * removals and additions, applied to the placements as they are now by
   * compare-and-set, so that what another gateway wrote meanwhile (a
   * migration's new host, a mark) is kept rather than overwritten.
   */
  private async writeInstances(key: string, record: ServiceRecord, next: ServiceInstanceRecord[], base: ServiceInstanceRecord[]): Promise<void> {
    const removed = new Set(base.filter((b) => !next.some((n) => n.id === b.id)).map((b) => b.id));
    const added = next.filter((n) => !base.some((b) => b.id === n.id));
    await this.updatePlacements(key, record, `the placements of ${key}`, (current) =>
      [...current.filter((i) => !removed.has(i.id)), ...added.filter((a) => !current.some((i) => i.id === a.id))]);
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

  private createInstance(record: ServiceRecord, instances: ServiceInstanceRecord[]): Promise<ServiceInstanceRecord> {
    return this.createInstanceOn(record, serviceInstanceHosts(this.deps.fleet.live(), instances));
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
        reply = decodeOrRefuse('CreateInstanceReply', (await this.deps.fabric.nc.request(ServiceSubjects.create(host.id), encode(req), { timeout: this.deps.createTimeoutMs })).data);
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

  private async destroyInstance(tenant: string, service: string, inst: ServiceInstanceRecord): Promise<void> {
    const req: DestroyInstanceRequest = { tenant, service, instanceId: inst.id };
    await this.deps.fabric.nc.request(ServiceSubjects.destroy(inst.host), encode(req), { timeout: this.deps.createTimeoutMs })
      .catch((err: unknown) => this.deps.log.warn({ hostId: inst.host, instanceId: inst.id, err: (err as Error).message }, 'instance destroy request failed'));
    this.inFlight.delete(inst.id);
  }

  // ---- state

  /** Refuses (`quota_exceeded`) service `name` at `max` when the tenant's services together could then pass the instance quota. */
  private async checkInstanceQuota(tenant: string, name: string, max: number): Promise<void> {
    const quota = this.deps.instanceQuota ?? 0;
    if (quota === 0) return;
    const services: ServiceRecord[] = [];
    for (const k of await kvKeys(this.deps.fabric.jsm, ServiceBuckets.services, `${tenant}.*`)) {
      const c = await this.read(k, true).catch(() => undefined);
      if (c) services.push(c.record);
    }
    checkServiceInstances(quota, services, name, max);
  }

  /**
   * The service as routing needs it (read, cached CACHE_MS); while the store
   * does not answer (on a cluster, its stream electing a leader after a node's
   * loss) the cached copy, which the placements watch keeps current.
   */
  private async readForRouting(key: string): Promise<Cached> {
    try {
      return await this.read(key);
    } catch (err) {
      const cached = this.cache.get(key);
      if (cached && isBrokerFailure(err)) return cached;
      throw err;
    }
  }

  private async read(key: string, fresh = false): Promise<Cached> {
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

  private locked<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(work, work);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }

  private leastLoaded(key: string, instances: ServiceInstanceRecord[]): ServiceInstanceRecord {
    const load = (i: ServiceInstanceRecord) => this.inFlight.get(i.id) ?? 0;
    const least = Math.min(...instances.map(load));
    const tied = instances.filter((i) => load(i) === least);
    const t = this.turn.get(key) ?? 0;
    this.turn.set(key, t + 1);
    return tied[t % tied.length];
  }

  private view(record: ServiceRecord, instances: ServiceInstanceRecord[]): ServiceView {
    const { init, initData, ...rest } = record;
    return {
      ...rest,
      ...(init ? { init: Buffer.from(init).toString('base64') } : {}),
      ...(initData ? { initData: initData.name } : {}),
      instances: instances.map((i) => ({ id: i.id, host: i.host, inFlight: this.inFlight.get(i.id) ?? 0, createdAt: i.createdAt, ...(i.migrating ? { migrating: i.migrating } : {}) })),
    };
  }
}

function withoutMark(i: ServiceInstanceRecord): ServiceInstanceRecord {
  const { migrating: _m, ...rest } = i;
  return rest;
}

/** Rendezvous (highest random weight) hashing: a key keeps its instance while that instance exists. */
export function rendezvous<T extends { id: string }>(routeKey: string, instances: T[]): T {
  let best = instances[0];
  let bestScore = -1n;
  for (const inst of instances) {
    const score = createHash('sha256').update(routeKey).update('\0').update(inst.id).digest().readBigUInt64BE(0);
    if (score > bestScore) {
      bestScore = score;
      best = inst;
    }
  }
  return best;
}

function checkName(name: string): string {
  if (!NAME_PATTERN.test(name)) throw new FlurryError('not_found', `service "${name}" does not exist`);
  return name;
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
