/**
 * The host side of services (docs/services.md): makes persistent instances of
 * a function version (booting its parent here first when needed, with the
 * service's init input if it has one: service-parents.ts), answers
 * HTTP requests on each instance's own subject (each request id once:
 * reply-table.ts), and destroys instances.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import {
  decodeChecked, decodeOrRefuse, encode, FlurryError, openExistingObjects, readDataObject, type InitDataRef, MigrationSubjects, newId, ServiceSubjects, toWireError,
  type MigrateInstanceReply, type MigrateInstanceRequest, type CreateInstanceReply, type CreateInstanceRequest, type DestroyInstanceReply, type StandbyParentReply,
  type HostServiceInstance, type InvokeReply, type InvokeRequest, type KeptReply, type Logger, type PlaceReply, type PlaceRequest,
} from '@flurry/core';
import type { CallResult, GuestPool, HttpRequestData, MigrationMode } from './guest/guest-pool.js';
import { MigrationReceiver, NatsTarget } from './migration/nats-migration.js';
import { precopy } from './migration/precopy.js';
import { ServiceParents } from './service-parents.js';
import { replyWith } from './reply.js';
import { ReplyTable, type ReplyTableLimits } from './reply-table.js';

/** Requests on an instance's subject go to one subscriber: during a migration's commit both hosts subscribe. */
const INSTANCE_QUEUE = 'instance';
/** A migration step to the target must answer within this (steps carry at most about 1 MiB; prepare, which may warm, gets three times). */
const STEP_TIMEOUT_MS = 10_000;
/** A source whose commit answer was lost asks the target for the outcome this long, the instance stopped meanwhile. */
const OUTCOME_TIMEOUT_MS = 6 * STEP_TIMEOUT_MS;
/** The default stop rule: stop when the dirty pages would take this long to send (the pause adds the handover's own few ms). */
const DOWNTIME_BUDGET_MS = 5;
/** How long a migrated-away instance's requests still reaching this host are forwarded. */
const MOVED_MS = 60_000;
interface HostedInstance {
  tenant: string;
  service: string;
  instanceId: string;
  /** The pool's own id of the instance. */
  poolId: string;
  /** Its parent: the pool key (released with the instance) and the init input it was booted with. */
  parentKey: string;
  init?: Uint8Array;
  initData?: InitDataRef;
  sub: Subscription;
  requests: number;
}

export interface ServiceHostDeps {
  hostId: string;
  nc: NatsConnection;
  pool: GuestPool;
  /** Deployed modules (to boot parents with an init input). */
  modules: ObjectStore;
  log: Logger;
  /** Warms the function version on this host (as placement does); resolves once it is warm. */
  ensureWarm: (req: PlaceRequest) => Promise<PlaceReply>;
  /** The pool key of a warm function version. */
  warmKey: (tenant: string, name: string, digest: string) => string;
  /** Takes no new instances (draining, drained or exiting). */
  draining: () => boolean;
  /** Shutting down: holds nothing new at all. */
  exiting: () => boolean;
  /** How long and how many replies are kept against a request sent again (FLURRY_REPLY_KEEP_*). */
  replyLimits: ReplyTableLimits;
}

export class ServiceHost {
  private readonly instances = new Map<string, HostedInstance>();
  private readonly subs: Subscription[] = [];
  private inFlight = 0;
  /** Instances migrated away: their target host, for requests that still reach this host. */
  private readonly moved = new Map<string, { host: string; at: number }>();
  private readonly receiver: MigrationReceiver;
  private readonly parents: ServiceParents;
  private readonly replies: ReplyTable;

  constructor(private readonly deps: ServiceHostDeps) {
    this.replies = new ReplyTable(deps.replyLimits);
    this.parents = new ServiceParents({
      pool: deps.pool, modules: deps.modules, ensureWarm: deps.ensureWarm, warmKey: deps.warmKey,
      readData: async (ref) => readDataObject(await openExistingObjects(deps.nc, ref.store), ref),
    });
    this.receiver = new MigrationReceiver({
      hostId: deps.hostId, pool: deps.pool, log: deps.log,
      acquireParent: (spec) => this.parents.acquire(spec),
      releaseParent: (key) => this.parents.release(key),
      adopt: (r) => this.adopt(r),
    });
    // An instance destroyed with its thread (a request past its time limit) is gone: stop answering for it, so that
    // its host record no longer lists it and the gateway replaces it, instead of answering not_found forever.
    deps.pool.onInstanceGone((poolId, reason) => {
      const inst = [...this.instances.values()].find((i) => i.poolId === poolId);
      if (!inst) return;
      this.instances.delete(inst.instanceId);
      inst.sub.unsubscribe();
      this.parents.release(inst.parentKey);
      this.replies.forget(inst.instanceId);
      this.deps.log.warn({ service: `${inst.tenant}/${inst.service}`, instanceId: inst.instanceId, reason }, 'service instance lost with its guest thread');
    });
  }

  start(): void {
    const { nc, hostId } = this.deps;
    this.subs.push(
      nc.subscribe(ServiceSubjects.create(hostId), { callback: (_e, msg) => void this.onCreate(msg) }),
      nc.subscribe(ServiceSubjects.destroy(hostId), { callback: (_e, msg) => void this.onDestroy(msg) }),
      nc.subscribe(ServiceSubjects.standby(hostId), { callback: (_e, msg) => void this.onStandby(msg) }),
      nc.subscribe(MigrationSubjects.migrate(hostId), { callback: (_e, msg) => void this.onMigrate(msg) }),
      nc.subscribe(MigrationSubjects.receive(hostId), { callback: (_e, msg) => void this.receiver.handle(msg.data).then((r) => msg.respond(r)) }),
      nc.subscribe(MigrationSubjects.direct(hostId, '*'), {
        callback: (_e, msg) => void this.onRequest(msg, msg.subject.slice(msg.subject.lastIndexOf('.') + 1)),
      }),
    );
  }

  /** The instances this host holds (for its heartbeat). */
  list(): HostServiceInstance[] {
    // Migrating away: still this host's until the commit; a gateway that lost a migration's answer waits for it to settle.
    const migrating = new Set(this.deps.pool.instances().filter((i) => i.migrating === 'source' || i.migrating === 'stopped').map((i) => i.instanceId));
    return [...this.instances.values()].map(({ tenant, service, instanceId, requests, poolId }) => ({ tenant, service, instanceId, requests, ...(migrating.has(poolId) ? { migrating: true } : {}) }));
  }

  get running(): number {
    return this.inFlight;
  }

  private async onCreate(msg: Msg): Promise<void> {
    let reply: CreateInstanceReply;
    try {
      const req = decodeOrRefuse('CreateInstanceRequest', msg.data, msg.subject);
      reply = await this.create(req);
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  /** Keeps a service's parent warm here for a while (the controller renews it), so that a scale-out here is a clone. */
  private async onStandby(msg: Msg): Promise<void> {
    let reply: StandbyParentReply;
    try {
      const req = decodeOrRefuse('StandbyParentRequest', msg.data, msg.subject);
      // A drained host may hold one (a scale-out reactivates it); an exiting one may not.
      if (this.deps.exiting()) throw new FlurryError('unavailable', `host ${this.deps.hostId} is exiting`);
      await this.parents.hold(req, Math.min(Math.max(0, req.holdMs), 10 * 60_000));
      reply = { ok: true, hostId: this.deps.hostId };
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  private async create(req: CreateInstanceRequest): Promise<CreateInstanceReply> {
    const started = performance.now();
    if (this.deps.draining()) return { ok: false, error: { code: 'unavailable', message: `host ${this.deps.hostId} is draining` } };
    if (!/^[\w-]{1,64}$/.test(req.instanceId)) return { ok: false, error: { code: 'bad_request', message: `bad instance id "${req.instanceId}"` } };
    if (this.instances.has(req.instanceId)) return { ok: true, hostId: this.deps.hostId, instanceId: req.instanceId, createMs: 0 };
    const parentKey = await this.parents.acquire(req);
    let poolId: string;
    try {
      poolId = await this.deps.pool.createInstance(parentKey, req.requestId);
    } catch (err) {
      this.parents.release(parentKey);
      throw err;
    }
    const sub = this.subscribeInstance(req.tenant, req.service, req.instanceId);
    this.instances.set(req.instanceId, { tenant: req.tenant, service: req.service, instanceId: req.instanceId, poolId, parentKey, init: req.init, initData: req.initData, sub, requests: 0 });
    await this.deps.nc.flush();
    const createMs = performance.now() - started;
    this.deps.log.info({ requestId: req.requestId, service: `${req.tenant}/${req.service}`, instanceId: req.instanceId, createMs: Math.round(createMs * 100) / 100 }, 'service instance created');
    return { ok: true, hostId: this.deps.hostId, instanceId: req.instanceId, createMs };
  }

  private onDestroy(msg: Msg): void {
    const req = decodeChecked('DestroyInstanceRequest', msg.data, msg.subject);
    if (!req) {
      msg.respond(encode({ ok: false, error: { code: 'bad_request', message: 'malformed DestroyInstanceRequest' } } satisfies DestroyInstanceReply));
      return;
    }
    msg.respond(encode({ ok: true, hostId: this.deps.hostId, existed: this.destroy(req.instanceId) } satisfies DestroyInstanceReply));
  }

  destroy(instanceId: string): boolean {
    const inst = this.instances.get(instanceId);
    if (!inst) return false;
    this.instances.delete(instanceId);
    inst.sub.unsubscribe();
    this.deps.pool.destroyInstance(inst.poolId);
    this.parents.release(inst.parentKey);
    this.replies.forget(instanceId);
    this.deps.log.info({ service: `${inst.tenant}/${inst.service}`, instanceId }, 'service instance destroyed');
    return true;
  }

  private subscribeInstance(tenant: string, service: string, instanceId: string): Subscription {
    return this.deps.nc.subscribe(ServiceSubjects.request(tenant, service, instanceId), {
      queue: INSTANCE_QUEUE,
      callback: (_e, m) => void this.onRequest(m, instanceId),
    });
  }

  private async onRequest(msg: Msg, instanceId: string): Promise<void> {
    const inst = this.instances.get(instanceId);
    const moved = inst ? undefined : this.moved.get(instanceId);
    if (moved && Date.now() - moved.at < MOVED_MS) {
      // Migrated away while this request was on its way: the target answers it.
      try {
        msg.respond((await this.deps.nc.request(MigrationSubjects.direct(moved.host, instanceId), msg.data, { timeout: STEP_TIMEOUT_MS })).data);
      } catch (err) {
        msg.respond(encode({ ok: false, error: toWireError(new FlurryError('unavailable', `instance ${instanceId} moved to ${moved.host}, which did not answer: ${(err as Error).message}`)), hostId: this.deps.hostId } satisfies InvokeReply));
      }
      return;
    }
    let reply: InvokeReply;
    const req = decodeChecked('InvokeRequest', msg.data, msg.subject);
    if (!req) reply = { ok: false, error: { code: 'bad_request', message: 'malformed InvokeRequest' }, hostId: this.deps.hostId };
    else if (!inst) reply = { ok: false, error: { code: 'not_found', message: `instance ${instanceId} does not exist` }, hostId: this.deps.hostId };
    // Sent again (its first reply lost with a broker node): the first run's reply, not a second run.
    else reply = await this.replies.run(instanceId, req.requestId, () => this.runRequest(inst, req));
    replyWith(msg, this.deps.nc, reply, (bytes, limit) => ({
      ok: false, hostId: this.deps.hostId, error: { code: 'output_limit', message: `the answer (${bytes} bytes) is larger than the broker takes (max_payload ${limit})` },
    } satisfies InvokeReply), this.deps.log);
  }

  /** Runs one request on the instance; a failure is a reply too (kept like a success: the run may have changed the state). */
  private async runRequest(inst: HostedInstance, req: InvokeRequest): Promise<InvokeReply> {
    const { instanceId } = inst;
    this.inFlight++;
    try {
      inst.requests++;
      const r = await this.deps.pool.instanceHandle(inst.poolId, { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body }, req.requestId);
      if (r.logs.length > 0) {
        const glog = this.deps.log.child({ requestId: req.requestId, service: `${inst.tenant}/${inst.service}`, instanceId });
        for (const line of r.logs) glog[line.level]({ guest: true }, line.message);
      }
      const answeredBy = (r as CallResult & { hostId?: string }).hostId ?? this.deps.hostId;
      return { ok: true, status: r.status, headers: r.headers, body: r.body, hostId: answeredBy, durationMs: r.durationMs };
    } catch (err) {
      if (!(err instanceof FlurryError)) this.deps.log.error({ err, instanceId }, 'service request failed');
      return { ok: false, error: toWireError(err), hostId: this.deps.hostId };
    } finally {
      this.inFlight--;
    }
  }

  // ---- migration (docs/services.md, "Migration")

  private async onMigrate(msg: Msg): Promise<void> {
    let reply: MigrateInstanceReply;
    try {
      reply = await this.migrate(decodeOrRefuse('MigrateInstanceRequest', msg.data, msg.subject));
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  /** Source side: pre-copy to the target over NATS, then hand over the subject and the held requests. */
  async migrate(req: MigrateInstanceRequest): Promise<MigrateInstanceReply> {
    const { nc, pool, hostId, log } = this.deps;
    const inst = this.instances.get(req.instanceId);
    if (!inst) return { ok: false, error: { code: 'not_found', message: `instance ${req.instanceId} is not on host ${hostId}` } };
    if (req.target === hostId) return { ok: false, error: { code: 'bad_request', message: 'the target is the source host' } };
    const migrationId = newId('mig');
    const target = new NatsTarget(nc, req.target, {
      migrationId, requestId: req.requestId, tenant: inst.tenant, service: inst.service, instanceId: inst.instanceId, name: req.name, digest: req.digest,
      init: inst.init, initData: inst.initData,
    }, { stepTimeoutMs: STEP_TIMEOUT_MS, prepareTimeoutMs: STEP_TIMEOUT_MS * 3, outcomeTimeoutMs: OUTCOME_TIMEOUT_MS });
    // Native dirty tracking where the pager can do it, else comparing pages with the copy sent.
    let mode: MigrationMode | undefined;
    for (const m of ['async', 'sync', 'compare'] as const) {
      try {
        await pool.beginMigration(inst.poolId, { mode: m });
        mode = m;
        break;
      } catch (err) {
        if (m === 'compare') throw err;
      }
    }
    let forwarded = 0;
    let sourceMemory: { hash: string; memoryBytes: number } | undefined;
    target.verify = req.verify === true;
    // Read at the commit, the instance stopped: the target answers a request sent again that ran here.
    target.keptReplies = (maxBytes) => this.replies.export(inst.instanceId, maxBytes);
    const report = await precopy(
      {
        round: () => pool.migrationRound(inst.poolId),
        quiesce: () => pool.quiesceMigration(inst.poolId),
        stopAndCopy: async () => {
          const last = await pool.stopAndCopy(inst.poolId);
          // Stopped: the memory is what the target will hold once it has the last pages.
          if (req.verify) sourceMemory = await pool.instanceMemoryHash(inst.poolId);
          return last;
        },
        commit: () => {
          // The target subscribed the instance's subject already (or, its commit's outcome unknown, may have): requests reach one of the two.
          this.moved.set(inst.instanceId, { host: req.target, at: Date.now() });
          this.instances.delete(inst.instanceId);
          // Drained, not unsubscribed: requests the server routed here meanwhile still arrive, and are forwarded.
          void inst.sub.drain().catch(() => undefined);
          const held = pool.commitMigration(inst.poolId);
          this.parents.release(inst.parentKey);
          this.replies.forget(inst.instanceId);
          forwarded = held.length;
          for (const h of held) h.forward(this.forwardTo(req.target, inst, h.request, h.callId));
        },
        abort: async () => {
          await target.abort();
          await pool.abortMigration(inst.poolId);
        },
      },
      target,
      { downtimeBudgetMs: req.downtimeBudgetMs ?? DOWNTIME_BUDGET_MS, maxRounds: req.maxRounds ?? 30 },
    ).catch((err: unknown) => {
      log.warn({ service: `${inst.tenant}/${inst.service}`, instanceId: inst.instanceId, migrationId, target: req.target, held: this.instances.has(inst.instanceId), err: (err as Error).message }, 'service instance migration failed');
      throw err;
    });
    for (const [id, m] of this.moved) if (Date.now() - m.at > MOVED_MS) this.moved.delete(id);
    log.info({
      service: `${inst.tenant}/${inst.service}`, instanceId: inst.instanceId, migrationId, target: req.target, mode, rounds: report.rounds.length,
      downtimeMs: Math.round(report.downtimeMs * 100) / 100, pagesSent: report.pagesSent, pagesApplied: report.pagesApplied, outcomeAsked: report.outcomeAsked,
    }, 'service instance migrated');
    const verify = sourceMemory && target.memoryHash ? { sourceMemory: sourceMemory.hash, targetMemory: target.memoryHash, memoryBytes: sourceMemory.memoryBytes } : undefined;
    return { ok: true, report: { ...report, source: hostId, target: req.target, forwarded, mode, ...(verify ? { verify } : {}) } };
  }

  private async forwardTo(host: string, inst: HostedInstance, request: HttpRequestData, callId: string): Promise<CallResult> {
    const req: InvokeRequest = { requestId: callId, tenant: inst.tenant, name: '', digest: '', ...request };
    let data: Uint8Array;
    try {
      data = (await this.deps.nc.request(MigrationSubjects.direct(host, inst.instanceId), encode(req), { timeout: STEP_TIMEOUT_MS })).data;
    } catch (err) {
      // As for a request that reaches this host after the migration: a clean refusal, not an internal error.
      throw new FlurryError('unavailable', `instance ${inst.instanceId} moved to ${host}, which did not answer: ${(err as Error).message}; its outcome is unknown`, { retryAfterSeconds: 1 });
    }
    const reply = decodeOrRefuse('InvokeReply', data);
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return { status: reply.status, headers: reply.headers, body: reply.body, durationMs: reply.durationMs, logs: [], hostId: reply.hostId } as unknown as CallResult;
  }

  /** Target side, at commit: serve a received instance on its subject. */
  private async adopt(r: { tenant: string; service: string; instanceId: string; poolId: string; parentKey: string; init?: Uint8Array; initData?: InitDataRef; replies?: KeptReply[] }): Promise<void> {
    this.moved.delete(r.instanceId);
    // Before the subscription: a request the source ran, sent again, must find its reply.
    this.replies.import(r.instanceId, r.replies ?? []);
    const sub = this.subscribeInstance(r.tenant, r.service, r.instanceId);
    this.instances.set(r.instanceId, { tenant: r.tenant, service: r.service, instanceId: r.instanceId, poolId: r.poolId, parentKey: r.parentKey, init: r.init, initData: r.initData, sub, requests: 0 });
    // No flush: the server handles this connection's SUB before the commit's answer, so the source, once answered,
    // can let go (one nats-server; a cluster propagates interest on its own time).
  }

  /** Stops answering and destroys every instance (drain). */
  close(): void {
    for (const s of this.subs) s.unsubscribe();
    for (const id of [...this.instances.keys()]) this.destroy(id);
  }
}
