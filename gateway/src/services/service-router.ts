/**
 * Routing a service's HTTP requests to its instances (docs/services.md):
 * the instance chosen (sticky by route key, else least in flight), a request
 * held while the service has no instance yet or this gateway reconnects,
 * sent again while its outcome is unknown (request-resend.ts decides), and
 * an instance that nobody serves waited for (a migration), found alive, or
 * replaced when its host is gone.
 */
import { createHash } from 'node:crypto';
import { RequestError, type MsgHdrs } from '@nats-io/transport-node';
import {
  CallFailed, callEncoded, decodeOrRefuse, encode, FlurryError, isCallTimeout, isNoResponders, serviceKey, ServiceSubjects, traceHeaders,
  type Fabric, type FunctionRecord, type InvokeRequest, type Logger, type ServiceInstanceRecord, type ServiceRecord, type TraceContext,
} from '@flurry/core';
import { invokeLimitsOf } from '../functions/function-limits.js';
import type { FleetView } from '../fleet-view.js';
import type { InvokeResult } from '../invoker.js';
import { withOutcome, type GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { InstanceScaling } from './instance-scaling.js';
import type { RequestCounts } from './request-counts.js';
import { hostAwayEnd, resendWaitMs, shouldResend, type AttemptEnd } from './request-resend.js';
import { HostAway, whileHostLive } from '../host-held-work.js';
import { serviceKeyOf, type ServiceState, type ServiceStore } from './service-store.js';

/** A request that finds nobody serving a migrating instance waits at most this long for the migration to end. */
const MIGRATION_WAIT_MS = 30_000;
/** A service call that arrives while this gateway is reconnecting waits this long for the broker before it is refused. */
const RECONNECT_HOLD_MS = 2000;
/** A resend that found its instance's host not subscribed (reconnecting to another node) tries again after this. */
const RESEND_PAUSE_MS = 100;
/** A request that found nobody serving its instance's subject, its host live, is sent again this often until its deadline. */
const UNSERVED_RETRY_MS = 250;
/** What an attempt's wait rejects with when this gateway's broker connection drops. */
const GATEWAY_OUTAGE = Symbol('gateway broker outage');

/** How an attempt's wait failed, if it is one of the ways an attempt ends (anything else is thrown on). */
function attemptEnd(err: unknown): AttemptEnd | undefined {
  if (err === GATEWAY_OUTAGE) return 'gateway-outage';
  if (err instanceof HostAway) return hostAwayEnd(err);
  if (isNoResponders(err)) return 'no-responders';
  // A connection closed or draining (this gateway stopping) is no broker failure: thrown on.
  if (err instanceof CallFailed && (err.reason === 'timeout' || err.cause instanceof RequestError)) return 'broker-error';
  return undefined;
}

export interface ServiceRouterDeps {
  fabric: Fabric;
  fleet: FleetView;
  store: ServiceStore;
  scaling: InstanceScaling;
  counts: RequestCounts;
  invokeTimeoutMs: number;
  /** How long a request waits for a service's first instance. */
  createTimeoutMs: number;
  /** An instance whose host is silent this long past its TTL is replaced, its state lost (FLURRY_INSTANCE_LOST_MS). */
  instanceLostMs: number;
  /** The service's function: its own limits go with each request (functions/function-limits.ts). */
  getFunction: (tenant: string, name: string) => Promise<FunctionRecord>;
  log: Logger;
  metrics?: GatewayMetrics;
}

export class ServiceRouter {
  /** Round-robin position per service among equally loaded instances. */
  private readonly turn = new Map<string, number>();

  constructor(private readonly deps: ServiceRouterDeps) {}

  /**
   * Sends one HTTP request to an instance of the service: sticky by `routeKey`, else least in flight.
   * `trace` goes to the host in the request's headers (core/src/trace.ts).
   */
  async forward(tenant: string, name: string, build: (record: ServiceRecord) => InvokeRequest, routeKey?: string, trace?: TraceContext): Promise<InvokeResult & { instanceId: string }> {
    return withOutcome(() => this.route(tenant, name, build, routeKey, trace, Date.now() + this.deps.invokeTimeoutMs), (outcome, seconds) => this.deps.metrics?.serviceRequest(tenant, name, outcome, seconds));
  }

  /**
   * forward's work, until `deadline` (the request's own, kept across the
   * attempts): the request is sent again where an attempt found nobody
   * serving the instance's subject and the instance's fate allows it.
   */
  private async route(tenant: string, name: string, build: (record: ServiceRecord) => InvokeRequest, routeKey: string | undefined, trace: TraceContext | undefined, deadline: number): Promise<InvokeResult & { instanceId: string }> {
    let unservedSince: number | undefined;
    for (;;) {
      const outcome = await this.attempt(tenant, name, build, routeKey, trace, deadline, unservedSince);
      if ('instanceId' in outcome) return outcome;
      unservedSince = outcome.unservedSince;
    }
  }

  /**
   * One attempt of route: the answer, or `{ unservedSince }` to send again
   * (when the instance's subject first had nobody serving it; undefined
   * after its instance was replaced).
   */
  private async attempt(tenant: string, name: string, build: (record: ServiceRecord) => InvokeRequest, routeKey: string | undefined, trace: TraceContext | undefined, deadline: number, unservedSince: number | undefined): Promise<(InvokeResult & { instanceId: string }) | { unservedSince: number | undefined }> {
    const { store, scaling, counts } = this.deps;
    const key = serviceKeyOf(tenant, name);
    // Held while this gateway reconnects (to another node of a cluster: milliseconds), not refused at once;
    // a broker away for longer refuses it 503 (it has sent nothing yet).
    await this.deps.fabric.link.whenUp(Math.min(RECONNECT_HOLD_MS, this.deps.invokeTimeoutMs));
    let c = await store.readForRouting(key);
    if (c.instances.length === 0) {
      // Held while the first instances start (up to min here, or by the autoscaler, which sees held requests), not refused.
      counts.holding(key, 1);
      try {
        await (scaling.underWay(key) ?? scaling.reconcile(tenant, name, 'request'));
        c = await store.read(key, true);
        if (c.instances.length === 0 && c.record.max > 0) c = await this.waitForInstance(key, this.deps.createTimeoutMs);
      } finally {
        counts.holding(key, -1);
      }
      if (c.instances.length === 0) throw new FlurryError('unavailable', `service "${name}" has no running instance`, { retryAfterSeconds: 1 });
    }
    const inst = routeKey ? rendezvous(routeKey, c.instances) : this.leastLoaded(key, c.instances);
    // A service outlives its function's deletion (its instances run the version it was made with): the defaults then.
    const fn = await this.deps.getFunction(tenant, c.record.function).catch(() => undefined);
    const limits = fn && invokeLimitsOf(fn);
    const req = limits ? { ...build(c.record), limits } : build(c.record);
    counts.sent(key, inst.id);
    let data: Uint8Array | 'no-responders';
    try {
      data = await this.send(tenant, name, inst, req, deadline, traceHeaders(trace));
    } finally {
      counts.ended(inst.id);
    }
    if (data === 'no-responders') {
      store.forget(key);
      // Nobody serves the instance's subject. While it migrates, the migration settles who has it: the request
      // waits until then. Otherwise its host's heartbeats tell: a host that beats again and lists the instance
      // has it (it was reconnecting after a broker outage: its state is there); a host that beats without it, or
      // is silent past the grace, lost it: it is replaced (its state is lost); a host silent for less (paused,
      // cut off: it may come back with the state) leaves it unavailable. While its host is live but no heartbeat
      // since has been seen (the hosts' store may be electing a leader after a node's loss for longer than a
      // TTL), the request is sent again every UNSERVED_RETRY_MS until its deadline: the host may serve it
      // before its heartbeats are stored again (it answers an id once).
      const since = unservedSince ?? Date.now();
      if (!(await this.migrationSettled(key, inst.id))) {
        const verdict = this.instanceVerdict(inst, since);
        if (verdict === 'unknown') {
          throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}" is not answering: its host ${inst.host} stopped heartbeating; the instance is replaced (its state lost) if the host stays away ${Math.round(this.deps.instanceLostMs / 1000)} s`, { retryAfterSeconds: 1 });
        }
        if (verdict === 'lost') {
          await scaling.replaceLost(tenant, name, inst.id);
          return { unservedSince: undefined };
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new FlurryError('unavailable', `instance ${inst.id} of service "${name}" is not answering (nobody has served its subject on host ${inst.host} since ${new Date(since).toISOString()})`, { retryAfterSeconds: 1 });
        await new Promise((r) => setTimeout(r, Math.min(UNSERVED_RETRY_MS, left)));
      }
      return { unservedSince: since };
    }
    const reply = decodeOrRefuse('InvokeReply', data, undefined, 'unavailable');
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return { ...reply, instanceId: inst.id };
  }

  /**
   * Sends `req` to the instance and resolves to the answer's bytes, or
   * `no-responders` when nobody served its subject at the first attempt.
   * An attempt whose outcome a broker connection's loss made unknown is sent
   * again, same requestId, where the instance is now, until the invoke
   * timeout (request-resend.ts): the host answers an id once.
   */
  private async send(tenant: string, name: string, inst: ServiceInstanceRecord, req: InvokeRequest, deadline: number, headers: MsgHdrs | undefined): Promise<Uint8Array | 'no-responders'> {
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
        const asked = callEncoded(this.deps.fabric.nc, 'serviceRequest', subject, payload, { timeoutMs: wait, raw: true, headers });
        return await whileHostLive(this.deps.fleet, host, Promise.race([asked, outage.outage.catch(() => Promise.reject(GATEWAY_OUTAGE))]));
      } catch (err) {
        error = err;
        end = attemptEnd(err);
        if (!end) throw err;
        if (end === 'broker-error' && isCallTimeout(err) && wait < untilDeadline) end = 'unanswered';
      } finally {
        outage.cancel();
      }
      const resending = attempts > 1;
      if (end === 'no-responders' && !resending) return 'no-responders';
      if (!shouldResend({ end, outageDuring: link.outages !== outagesBefore || !link.connected, resending, msLeft: deadline - Date.now() })) {
        if ((end === 'broker-error' || end === 'unanswered') && isCallTimeout(error)) throw new FlurryError('timeout', `no answer from instance ${inst.id} within ${this.deps.invokeTimeoutMs} ms${resending ? ` (sent ${attempts} times)` : ''}`);
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
    const c = await this.deps.store.read(key, true).catch(() => this.deps.store.cached(key));
    return c?.instances.find((i) => i.id === instanceId);
  }

  /** Resolves with the service's state once it has an instance, or as it is at the timeout. */
  private async waitForInstance(key: string, timeoutMs: number): Promise<ServiceState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = await this.deps.store.read(key, true);
      const left = deadline - Date.now();
      if (c.instances.length > 0 || left <= 0) return c;
      // The periodic re-read covers a watch that missed an update.
      await this.deps.store.placementChange(key, Math.min(left, 1000));
    }
  }

  /**
   * True when the instance was being migrated (its request found nobody
   * serving it meanwhile) and the migration has ended since: waits for it to
   * commit or abort, at most MIGRATION_WAIT_MS (a mark left longer is taken
   * for a lost instance's).
   */
  private async migrationSettled(key: string, instanceId: string): Promise<boolean> {
    const marked = async () => (await this.deps.store.read(key, true).catch(() => undefined))?.instances.find((i) => i.id === instanceId)?.migrating;
    if (!(await marked())) return false;
    const until = Date.now() + MIGRATION_WAIT_MS;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      if (!(await marked())) return true;
    }
    return false;
  }

  /**
   * What became of an instance that found no responder since `since`, as
   * this gateway knows now: `lost` once its host has been silent past the
   * grace (FLURRY_INSTANCE_LOST_MS after its TTL), or beats (after `since`:
   * its subscriptions are back then) without listing it; `alive` when it
   * beats and lists it; `unknown` while its host is silent within the grace;
   * `pending` while its host is live but has not beaten since.
   */
  private instanceVerdict(inst: ServiceInstanceRecord, since: number): 'lost' | 'alive' | 'unknown' | 'pending' {
    const host = this.deps.fleet.live().find((h) => h.id === inst.host);
    if (!host) return this.deps.fleet.silentLongerThan(inst.host, this.deps.instanceLostMs) ? 'lost' : 'unknown';
    if (host.heartbeatAt <= since) return 'pending';
    return host.instances?.some((i) => i.instanceId === inst.id) ? 'alive' : 'lost';
  }

  private leastLoaded(key: string, instances: ServiceInstanceRecord[]): ServiceInstanceRecord {
    const load = (i: ServiceInstanceRecord) => this.deps.counts.inFlight(i.id);
    const least = Math.min(...instances.map(load));
    const tied = instances.filter((i) => load(i) === least);
    const t = this.turn.get(key) ?? 0;
    this.turn.set(key, t + 1);
    return tied[t % tied.length];
  }
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
