/**
 * The host side of services (docs/services.md): makes persistent instances of
 * a function version (booting its parent here first when needed, with the
 * service's init input if it has one: service-parents.ts), answers
 * HTTP requests on each instance's own subject (each request id once:
 * reply-table.ts), migrates them away (handing the requests that reach it
 * meanwhile to the target, which answers their callers) and in, and
 * destroys instances.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import {
  encode, FlurryError, HANDED_OVER, MigrationSubjects, newId, openExistingObjects, readDataObject, serve, ServiceSubjects, toWireError, traceOf,
  type CreateInstanceReply, type CreateInstanceRequest, type HandoverRequest, type HostServiceInstance, type RequestSample, type InitDataRef, type InvokeRequest, type KeptReply, type Logger,
  type MigrateInstanceReply, type MigrateInstanceRequest, type ParentKey, type PlaceReply, type PlaceRequest, type StandbyParentReply, type StandbyParentRequest, type TraceContext,
} from '@flurry/core';
import type { HostMetrics } from './metrics/host-metrics.js';
import { GuestCallError, type GuestPool } from './guest/guest-pool.js';
import type { GuestLogPublisher } from './guest-log-publisher.js';
import { MigrationReceiver } from './migration/migration-receiver.js';
import { NatsTarget } from './migration/nats-target.js';
import { InstanceSource } from './migration/instance-source.js';
import { pacingFrom, precopy } from './migration/precopy.js';
import { LATENCY_PACING, LatencyPacer, sampleLateness } from './migration/latency-pacing.js';
import { ServiceParents } from './service-parents.js';
import { ReplyTable, type ReplyTableLimits, type RunAnswer } from './reply-table.js';

/** Requests on an instance's subject go to one subscriber: during a migration's commit both hosts subscribe. */
const INSTANCE_QUEUE = 'instance';
/** A migration step to the target must answer within this (steps carry at most about 1 MiB; prepare, which may warm, gets three times). */
const STEP_TIMEOUT_MS = 10_000;
/** A source whose commit answer was lost asks the target for the outcome this long, the instance stopped meanwhile. */
const OUTCOME_TIMEOUT_MS = 6 * STEP_TIMEOUT_MS;
/** The default stop rule: stop when the dirty pages would take this long to send (the pause adds the handover's own few ms). */
const DOWNTIME_BUDGET_MS = 5;
/** Request samples a migration sends the target: one per path, the latest, of at most this many paths and body bytes. */
const SAMPLE_PATHS = 4;
const SAMPLE_BODY_BYTES = 64 * 1024;
/** How long a migrated-away instance's requests still reaching this host are handed over. */
const MOVED_MS = 60_000;

/** Where a migrated instance went: its requests reaching this host are handed over to `host` under `migrationId`. */
interface MovedTo {
  host: string;
  migrationId: string;
}

/** Settles a held request that went to the target, which answers its caller: this host sends nothing. */
class HandedOver extends Error {
  override readonly name = 'HandedOver';
}

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
  /** Requests in flight by id, with the messages they came in: a migration hands the held ones to the target. */
  origins: Map<string, Origin>;
  /** From the moment its migration's commit is sent: where its requests go, and the messages handed over so far. */
  handing?: { to: MovedTo; handed: Set<Msg> };
  /** While it migrates away: requests it answered lately, by path (the target warms its code with them). */
  samples?: Map<string, RequestSample>;
  /** A request's usual time on this host, its guest time left out (ms, a moving average; not moved while it migrates). */
  usualHostMs: number;
  /** While it migrates away: paces round 0's copy by its requests' host time. */
  pacer?: LatencyPacer;
}

/** A request in flight on an instance and the messages it came in (more than one when it was sent again). */
interface Origin {
  req: InvokeRequest;
  msgs: Msg[];
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
  /** Round 0's rate of a migration's pre-copy, MiB a second (0: unpaced); later rounds as pacingFrom says. */
  migrationPaceMiBPerS?: number;
  /** The longest round 0 of a migration waits before a slice while the instance's requests run late (ms; 0: never; latency-pacing.ts). */
  migrationYieldMaxMs?: number;
  /** Where this host listens for a migration's page stream to its target (its channel address); none: pages as NATS apply steps. */
  pageStream?: { host: string; advertise?: string };
  metrics?: HostMetrics;
  /** Where what the guests logged goes, for their owner. */
  guestLogs: GuestLogPublisher;
}

export class ServiceHost {
  private readonly instances = new Map<string, HostedInstance>();
  private readonly subs: Subscription[] = [];
  private inFlight = 0;
  /** Instances migrated away: their target host, for requests that still reach this host. */
  private readonly moved = new Map<string, MovedTo & { at: number }>();
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
      keepReplies: (instanceId, replies) => this.replies.import(instanceId, replies),
      forgetReplies: (instanceId) => this.replies.forget(instanceId),
      warm: (parentKey, samples) => this.warm(parentKey, samples),
      adopt: (r) => this.adopt(r),
      drop: (instanceId) => void this.destroy(instanceId),
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
    const { nc, hostId, log } = this.deps;
    this.subs.push(
      serve(nc, 'createInstance', ServiceSubjects.create(hostId), (req) => this.create(req), { log }),
      serve(nc, 'destroyInstance', ServiceSubjects.destroy(hostId), (req) => ({ ok: true, hostId, existed: this.destroy(req.instanceId) }), { log }),
      serve(nc, 'standby', ServiceSubjects.standby(hostId), (req) => this.standby(req), { log }),
      serve(nc, 'migrate', MigrationSubjects.migrate(hostId), (req) => this.migrate(req), { log }),
      serve(nc, 'receive', MigrationSubjects.receive(hostId), (step) => this.receiver.answer(step), { log }),
      serve(nc, 'direct', MigrationSubjects.direct(hostId, '*'), (h, msg) => this.onHandover(h, msg.subject.slice(msg.subject.lastIndexOf('.') + 1), msg), { log, hostId }),
    );
  }

  /** The instances this host holds (for its heartbeat). */
  list(): HostServiceInstance[] {
    // Migrating away: still this host's until the commit; a gateway that lost a migration's answer waits for it to settle.
    const migrating = new Set(this.deps.pool.instances().filter((i) => i.migrating === 'source' || i.migrating === 'stopped').map((i) => i.instanceId));
    return [...this.instances.values()].map(({ tenant, service, instanceId, requests, poolId }) => ({ tenant, service, instanceId, requests, ...(migrating.has(poolId) ? { migrating: true } : {}) }));
  }

  /** Services' parents warm here with their digest made (for the heartbeat: a migration prefers a host holding its parent). */
  warmParents(): ParentKey[] {
    return this.parents.warmParents();
  }

  get running(): number {
    return this.inFlight;
  }

  /** Keeps a service's parent warm here for a while (the controller renews it), so that a scale-out here is a clone. */
  private async standby(req: StandbyParentRequest): Promise<StandbyParentReply> {
    // A drained host may hold one (a scale-out reactivates it); an exiting one may not.
    if (this.deps.exiting()) throw new FlurryError('unavailable', `host ${this.deps.hostId} is exiting`);
    await this.parents.hold(req, Math.min(Math.max(0, req.holdMs), 10 * 60_000));
    return { ok: true, hostId: this.deps.hostId };
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
    this.instances.set(req.instanceId, { tenant: req.tenant, service: req.service, instanceId: req.instanceId, poolId, parentKey, init: req.init, initData: req.initData, sub, requests: 0, origins: new Map(), usualHostMs: 0 });
    await this.deps.nc.flush();
    const createMs = performance.now() - started;
    this.deps.log.info({ requestId: req.requestId, service: `${req.tenant}/${req.service}`, instanceId: req.instanceId, createMs: Math.round(createMs * 100) / 100 }, 'service instance created');
    return { ok: true, hostId: this.deps.hostId, instanceId: req.instanceId, createMs };
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
    return serve(this.deps.nc, 'serviceRequest', ServiceSubjects.request(tenant, service, instanceId), (req, msg) => this.onRequest(req, instanceId, msg), { queue: INSTANCE_QUEUE, log: this.deps.log, hostId: this.deps.hostId });
  }

  private async onRequest(req: InvokeRequest, instanceId: string, msg: Msg): Promise<RunAnswer> {
    const inst = this.instances.get(instanceId);
    const moved = inst ? undefined : this.moved.get(instanceId);
    if (moved && Date.now() - moved.at < MOVED_MS) {
      // Migrated away while this request was on its way: the target answers it.
      try {
        this.handOver(moved, instanceId, req, msg);
        return HANDED_OVER;
      } catch (err) {
        return { ok: false, error: toWireError(new FlurryError('unavailable', `instance ${instanceId} moved to ${moved.host}; handing the request over failed: ${(err as Error).message}`, { retryAfterSeconds: 1 })), hostId: this.deps.hostId };
      }
    }
    if (!inst) return { ok: false, error: { code: 'not_found', message: `instance ${instanceId} does not exist` }, hostId: this.deps.hostId };
    let origin = inst.origins.get(req.requestId);
    if (origin) origin.msgs.push(msg);
    else inst.origins.set(req.requestId, (origin = { req, msgs: [msg] }));
    // Its commit sent, the instance is stopped: held (run here if the commit is refused) and handed over at once
    // (run there if it takes effect), rather than after the commit's answer. A reply kept here is answered here.
    if (inst.handing && !this.replies.kept(instanceId, req.requestId)) this.handMsgs(inst, origin);
    try {
      // Sent again (its first reply lost with a broker node): the first run's reply, not a second run.
      return await this.replies.run(instanceId, req.requestId, () => this.runRequest(inst, req, traceOf(msg)));
    } finally {
      origin.msgs.splice(origin.msgs.indexOf(msg), 1);
      if (origin.msgs.length === 0 && inst.origins.get(req.requestId) === origin) inst.origins.delete(req.requestId);
    }
  }

  /**
   * A request handed over by the source of a migration to this host: run here if that migration's commit took
   * effect here (the reply goes to the caller's reply subject it came with), else nothing is sent (the source,
   * resumed, runs it). Waits for the migration's end: it was sent right after the commit, before its answer.
   */
  private async onHandover(h: HandoverRequest, instanceId: string, msg: Msg): Promise<RunAnswer> {
    if ((await this.receiver.settled(h.migrationId, instanceId)) === 'refused') return HANDED_OVER;
    return this.onRequest(h.request, instanceId, msg);
  }

  /**
   * Publishes `req` to the instance's new host with the reply subject (and headers) it came with: that host
   * answers its caller, without a hop back through this one. Throws when the broker would not take it.
   */
  private handOver(to: MovedTo, instanceId: string, req: InvokeRequest, msg: Msg): void {
    const handover: HandoverRequest = { migrationId: to.migrationId, request: req };
    this.deps.nc.publish(MigrationSubjects.direct(to.host, instanceId), encode(handover), { ...(msg.reply ? { reply: msg.reply } : {}), ...(msg.headers ? { headers: msg.headers } : {}) });
  }

  /**
   * Hands a request of an instance whose commit is sent over by every message it came in that was not handed yet;
   * false when it cannot be (no message known, or the broker refused one).
   */
  private handMsgs(inst: HostedInstance, origin: Origin | undefined): boolean {
    const { handing } = inst;
    if (!handing || !origin || origin.msgs.length === 0) return false;
    try {
      for (const msg of origin.msgs) {
        if (handing.handed.has(msg)) continue;
        this.handOver(handing.to, inst.instanceId, origin.req, msg);
        handing.handed.add(msg);
      }
      return true;
    } catch (err) {
      this.deps.log.warn({ instanceId: inst.instanceId, requestId: origin.req.requestId, err: (err as Error).message }, 'a held request could not be handed over');
      return false;
    }
  }

  /** Runs one request on the instance; a failure is a reply too (kept like a success: the run may have changed the state). */
  private async runRequest(inst: HostedInstance, req: InvokeRequest, trace: TraceContext | undefined): Promise<RunAnswer> {
    const { instanceId } = inst;
    this.inFlight++;
    try {
      inst.requests++;
      const sent = performance.now();
      const r = await this.deps.pool.instanceHandle(inst.poolId, { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body }, req.requestId, req.limits);
      this.hostTime(inst, performance.now() - sent - r.durationMs);
      this.deps.guestLogs.publish(inst.tenant, { kind: 'service', service: inst.service, instanceId }, req.requestId, r);
      if (r.logs.length > 0) {
        const glog = this.deps.log.child({ requestId: req.requestId, service: `${inst.tenant}/${inst.service}`, instanceId, ...(trace ? { traceId: trace.traceId } : {}) });
        for (const line of r.logs) glog[line.level]({ guest: true }, line.message);
      }
      const { method, path, query, headers, body } = req;
      if (inst.samples && body.length <= SAMPLE_BODY_BYTES && (inst.samples.has(path) || inst.samples.size < SAMPLE_PATHS)) inst.samples.set(path, { method, path, query, headers, body });
      const answeredBy = r.hostId ?? this.deps.hostId;
      return { ok: true, status: r.status, headers: r.headers, body: r.body, hostId: answeredBy, durationMs: r.durationMs };
    } catch (err) {
      if (err instanceof HandedOver) return HANDED_OVER;
      if (err instanceof GuestCallError) this.deps.guestLogs.publish(inst.tenant, { kind: 'service', service: inst.service, instanceId }, req.requestId, err);
      if (!(err instanceof FlurryError)) this.deps.log.error({ err, instanceId, traceId: trace?.traceId }, 'service request failed');
      return { ok: false, error: toWireError(err), hostId: this.deps.hostId };
    } finally {
      this.inFlight--;
    }
  }

  /** A request's time on this host, its guest time left out: the usual figure, or while it migrates its pacer's. */
  private hostTime(inst: HostedInstance, ms: number): void {
    if (inst.pacer) inst.pacer.answered(ms);
    else if (!inst.samples) inst.usualHostMs += (ms - inst.usualHostMs) / 16;
  }

  // ---- migration (docs/services.md, "Migration")

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
    }, { stepTimeoutMs: STEP_TIMEOUT_MS, prepareTimeoutMs: STEP_TIMEOUT_MS * 3, outcomeTimeoutMs: OUTCOME_TIMEOUT_MS, ...(this.deps.pageStream ? { pageStream: this.deps.pageStream } : {}) });
    let forwarded = 0;
    const to: MovedTo = { host: req.target, migrationId };
    target.verify = req.verify === true;
    // Read at the commit, the instance stopped: the target answers a request sent again that ran here.
    target.keptReplies = (maxBytes, after) => this.replies.exportSince(inst.instanceId, maxBytes, after);
    inst.samples = new Map();
    target.samples = () => [...(inst.samples?.values() ?? [])];
    const yieldMaxMs = this.deps.migrationYieldMaxMs ?? LATENCY_PACING.maxWaitMs;
    if (yieldMaxMs > 0) inst.pacer = new LatencyPacer(inst.usualHostMs, { ...LATENCY_PACING, maxWaitMs: yieldMaxMs });
    const lateness = inst.pacer ? sampleLateness(inst.pacer) : undefined;
    // Native dirty tracking where the pager can do it, else comparing pages with the copy sent.
    const source = await InstanceSource.begin(pool, inst.poolId, {
      verify: req.verify === true,
      // Round 0 only: it is the bulk; the later rounds are small, and slowing them would let more pages be dirtied.
      ...(inst.pacer ? { waitBeforeSlice: (round: number, lastBytes: number) => (round === 0 ? (inst.pacer?.nextWaitMs(lastBytes) ?? 0) : (lateness?.stop(), 0)) } : {}),
      // Right behind the commit: the target takes them in order after it, and answers their callers itself.
      onCommitSent: (held) => {
        inst.handing = { to, handed: new Set() };
        for (const h of held) this.handMsgs(inst, inst.origins.get(h.callId));
      },
      onCommit: (held) => {
        // The target subscribed the instance's subject already (or, its commit's outcome unknown, may have): requests reach one of the two.
        this.moved.set(inst.instanceId, { ...to, at: Date.now() });
        this.instances.delete(inst.instanceId);
        // The held requests first: the clients waiting longest, and the target serves from now on.
        forwarded = held.length;
        inst.handing ??= { to, handed: new Set() };
        for (const h of held) {
          if (this.handMsgs(inst, inst.origins.get(h.callId))) h.forward(Promise.reject(new HandedOver()));
          else h.forward(Promise.reject(new FlurryError('unavailable', `instance ${inst.instanceId} moved to ${req.target}; its request could not be handed over`, { retryAfterSeconds: 1 })));
        }
        // Drained, not unsubscribed: requests the server routed here meanwhile still arrive, and are handed over.
        // The stopped copy goes once the drain is done (the requests were handed over before it).
        return inst.sub.drain().catch(() => undefined);
      },
      // After the pause: nothing here makes a client wait.
      onRelease: () => {
        this.parents.release(inst.parentKey);
        this.replies.forget(inst.instanceId);
      },
    });
    const { mode } = source;
    const pacing = pacingFrom(this.deps.migrationPaceMiBPerS ?? 0);
    const report = await precopy(source, target, { downtimeBudgetMs: req.downtimeBudgetMs ?? DOWNTIME_BUDGET_MS, maxRounds: req.maxRounds ?? 30, ...(pacing ? { pacing } : {}) }).finally(() => {
      // A migration that never reached round 1 (stop-and-copy, a failure) stops its sampling here.
      lateness?.stop();
      inst.pacer = undefined;
    }).catch((err: unknown) => {
      // Refused or failed before the commit: the source serves again (what it handed over, the target drops).
      inst.handing = undefined;
      inst.samples = undefined;
      log.warn({ service: `${inst.tenant}/${inst.service}`, instanceId: inst.instanceId, migrationId, target: req.target, held: this.instances.has(inst.instanceId), err: (err as Error).message }, 'service instance migration failed');
      this.deps.metrics?.migrationFailed();
      throw err;
    });
    this.deps.metrics?.migrated(report);
    for (const [id, m] of this.moved) if (Date.now() - m.at > MOVED_MS) this.moved.delete(id);
    log.info({
      service: `${inst.tenant}/${inst.service}`, instanceId: inst.instanceId, migrationId, target: req.target, mode, rounds: report.rounds.length,
      downtimeMs: Math.round(report.downtimeMs * 100) / 100, pagesSent: report.pagesSent, pagesApplied: report.pagesApplied, outcomeAsked: report.outcomeAsked,
    }, 'service instance migrated');
    const sourceMemory = source.memoryAtStop;
    const verify = sourceMemory && target.memoryHash ? { sourceMemory: sourceMemory.hash, targetMemory: target.memoryHash, memoryBytes: sourceMemory.memoryBytes } : undefined;
    return { ok: true, report: { ...report, source: hostId, target: req.target, forwarded, mode, ...(target.streaming ? { pageStream: true } : {}), ...(verify ? { verify } : {}) } };
  }

  /**
   * Target side, before the commit: runs the source's request samples in a throwaway clone of the instance's
   * parent, so that the received instance's first requests find the module's functions compiled (V8 compiles a
   * wasm function at its first call) and the thread's call path warm. Its answers and logs go nowhere; a sample
   * that fails is no matter (best effort), nor is a clone the memory budget refuses.
   */
  private async warm(parentKey: string, samples: RequestSample[]): Promise<void> {
    const { pool } = this.deps;
    let id: string | undefined;
    try {
      id = await pool.createInstance(parentKey);
      for (const s of samples.slice(0, SAMPLE_PATHS)) await pool.instanceHandle(id, s, newId('warm')).catch(() => undefined);
    } catch (err) {
      this.deps.log.debug({ parentKey, err: (err as Error).message }, 'no throwaway clone to warm a received instance');
    } finally {
      if (id !== undefined) pool.destroyInstance(id);
    }
  }

  /** Target side, at commit: serve a received instance on its subject. */
  private async adopt(r: { tenant: string; service: string; instanceId: string; poolId: string; parentKey: string; init?: Uint8Array; initData?: InitDataRef; replies?: KeptReply[] }): Promise<void> {
    this.moved.delete(r.instanceId);
    // Before the subscription: a request the source ran, sent again, must find its reply.
    this.replies.import(r.instanceId, r.replies ?? []);
    const sub = this.subscribeInstance(r.tenant, r.service, r.instanceId);
    this.instances.set(r.instanceId, { tenant: r.tenant, service: r.service, instanceId: r.instanceId, poolId: r.poolId, parentKey: r.parentKey, init: r.init, initData: r.initData, sub, requests: 0, origins: new Map(), usualHostMs: 0 });
    // No flush: the server handles this connection's SUB before the commit's answer, so the source, once answered,
    // can let go (one nats-server; a cluster propagates interest on its own time).
  }

  /** Stops answering and destroys every instance (drain). */
  close(): void {
    for (const s of this.subs) s.unsubscribe();
    for (const id of [...this.instances.keys()]) this.destroy(id);
  }
}
