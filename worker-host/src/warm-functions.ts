/**
 * The function versions warm on this host: placing one when the scheduler
 * (or a service instance) asks, serving its invocations through the version's
 * invoke queue group while the host takes work, and evicting it when it is
 * redeployed, deleted, or idle when the memory budget needs room.
 */
import type { Subscription } from '@nats-io/transport-node';
import {
  decodeChecked, FlurryError, followKv, InvokeQueue, parseTraceparent, serve, Subjects, toWireError, traceOf,
  type Fabric, type FleetEvent, type InvokeRequest, type KvFollower, type Logger, type PlaceReply, type PlaceRequest, type ReplyOf, type TraceContext, type WarmFunction,
} from '@flurry/core';
import { GuestCallError, GuestPool, type ChannelLogs } from './guest/guest-pool.js';
import type { GuestLogPublisher } from './guest-log-publisher.js';
import type { MemoryBudget } from './memory-budget.js';
import { fetchModule } from './module-store.js';
import type { HostMetrics } from './metrics/host-metrics.js';

interface WarmEntry extends WarmFunction {
  key: string;
  /** Its invoke queue subscription; none while the host is not active. */
  sub?: Subscription;
  /** Calls of it running here, and when the last one ended: an idle parent may be evicted for room. */
  calls: number;
  lastUsed: number;
}

export interface WarmFunctionsDeps {
  hostId: string;
  fabric: Fabric;
  pool: GuestPool;
  budget: MemoryBudget;
  log: Logger;
  metrics?: HostMetrics;
  /** Active and not exiting: what is placed serves calls at once. */
  takesWork(): boolean;
  /** Exiting: nothing more is placed. */
  exiting(): boolean;
  /** What the host advertises (its warm versions) changed. */
  onChange(): void;
  emit(event: FleetEvent, tenant: string): void;
  /** Where what the guests logged goes, for their owner. */
  guestLogs: GuestLogPublisher;
}

export class WarmFunctions {
  private readonly warm = new Map<string, WarmEntry>();
  private readonly placing = new Map<string, Promise<PlaceReply>>();
  private functionsWatch?: KvFollower;
  private calls = 0;
  private idle?: () => void;

  constructor(private readonly deps: WarmFunctionsDeps) {
    deps.pool.onChannelLogs((logs) => this.published(logs, logs.requestId, logs.tenant, logs.name, parseTraceparent(logs.traceparent)));
  }

  /** The guest pool's key of a warm function version. */
  static key(tenant: string, name: string, digest: string): string {
    return `${tenant}.${name}@${digest}`;
  }

  list(): WarmFunction[] {
    return [...this.warm.values()].map(({ tenant, name, digest }) => ({ tenant, name, digest }));
  }

  /** Invocations being answered here now (those the guest threads read from their own connections too). */
  get inFlight(): number {
    let own = 0;
    for (const w of this.warm.values()) own += this.deps.pool.ownCalls(w.key).running;
    return this.calls + own;
  }

  /** Resolves once no invocation is in flight, or at `deadline`. */
  async settled(deadline: number): Promise<void> {
    if (this.calls > 0) {
      await Promise.race([
        new Promise<void>((resolve) => (this.idle = resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
      ]);
    }
    // The calls threads read themselves end without telling this thread: looked at every 10 ms.
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Warms a function version here (one attempt at a time per version); also used by service instances. */
  ensureWarm(req: PlaceRequest): Promise<PlaceReply> {
    const key = WarmFunctions.key(req.tenant, req.name, req.digest);
    let pending = this.placing.get(key);
    if (!pending) {
      pending = this.place(key, req).finally(() => this.placing.delete(key));
      this.placing.set(key, pending);
    }
    return pending;
  }

  private async place(key: string, req: PlaceRequest): Promise<PlaceReply> {
    const { hostId, fabric, pool, budget } = this.deps;
    const log = this.deps.log.child({ requestId: req.requestId, fn: `${req.tenant}/${req.name}` });
    // A host that is not active may still warm a version (for a migration it receives); it does not serve calls of it.
    if (this.deps.exiting()) return { ok: false, error: { code: 'unavailable', message: `host ${hostId} is draining` } };
    if (this.warm.has(key)) return { ok: true, hostId, initMs: 0 };
    try {
      const bytes = await fetchModule(fabric.modules, req.tenant, req.digest);
      const info = await pool.warm(key, bytes, undefined, req.requestId, req.tenant);
      this.deps.guestLogs.publish(req.tenant, { kind: 'function', name: req.name }, req.requestId, info);
      const entry: WarmEntry = { key, tenant: req.tenant, name: req.name, digest: req.digest, calls: 0, lastUsed: Date.now() };
      if (this.deps.takesWork()) this.serveCalls(entry);
      this.warm.set(key, entry);
      budget.evictable(GuestPool.snapshotHolding(key), {
        // Idle: no call running and no service instance cloned from it (evicting would destroy them).
        idleSince: () => {
          const own = pool.ownCalls(key);
          return entry.calls === 0 && own.running === 0 && !pool.instances().some((i) => i.key === key) ? Math.max(entry.lastUsed, own.lastEnded) : undefined;
        },
        evict: () => void this.evict(entry, 'memory budget'),
      });
      await fabric.nc.flush();
      this.deps.onChange();
      log.info({ initMs: Math.round(info.initMs * 100) / 100, memoryBytes: info.memoryBytes }, 'function placed');
      this.deps.metrics?.coldStart(info.initMs);
      this.deps.emit({ kind: 'function.placed', at: Date.now(), tenant: req.tenant, name: req.name, digest: req.digest, hostId, initMs: info.initMs, requestId: req.requestId }, req.tenant);
      return { ok: true, hostId, initMs: info.initMs };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'placement failed');
      if (err instanceof GuestCallError) this.deps.guestLogs.publish(req.tenant, { kind: 'function', name: req.name }, req.requestId, err);
      pool.evict(key);
      return { ok: false, error: toWireError(err) };
    }
  }

  /** Joins every warm version's invoke queue group: function calls reach this host. */
  serveAll(): void {
    for (const w of this.warm.values()) this.serveCalls(w);
  }

  private serveCalls(w: WarmEntry): void {
    const { hostId, log } = this.deps;
    this.deps.pool.setServed(w.key, true);
    w.sub ??= serve(this.deps.fabric.nc, 'invoke', Subjects.invoke(w.tenant, w.name, w.digest), (req, msg) => this.invoke(req, w.key, traceOf(msg)), {
      queue: InvokeQueue, log, hostId,
    });
  }

  /** Leaves every invoke queue group: new function calls go to the other hosts. */
  async stopServing(): Promise<void> {
    // First, and at once: the guest threads decline calls of their own connections from now on.
    for (const w of this.warm.values()) this.deps.pool.setServed(w.key, false);
    await Promise.all([...this.warm.values()].map(async (w) => {
      const sub = w.sub;
      w.sub = undefined;
      await sub?.drain().catch(() => undefined);
    }));
  }

  /** A call from a direct call channel: answered as one from the queue group, or undefined when its version is not served here now. */
  take(req: InvokeRequest, trace: TraceContext | undefined): Promise<ReplyOf<'invoke'>> | undefined {
    const key = WarmFunctions.key(req.tenant, req.name, req.digest);
    if (!this.warm.get(key)?.sub) return undefined;
    return this.invoke(req, key, trace);
  }

  /** Answers a call; its log lines name the caller's trace (`trace`, from the request's headers) when it has one. */
  private async invoke(req: InvokeRequest, key: string, trace: TraceContext | undefined): Promise<ReplyOf<'invoke'>> {
    const { hostId, log } = this.deps;
    this.calls++;
    const entry = this.warm.get(key);
    if (entry) entry.calls++;
    try {
      const result = await this.deps.pool.handle(key, { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body }, req.requestId, req.limits);
      this.published(result, req.requestId, req.tenant, req.name, trace);
      return { ok: true, status: result.status, headers: result.headers, body: result.body, hostId, durationMs: result.durationMs };
    } catch (err) {
      if (err instanceof GuestCallError) this.deps.guestLogs.publish(req.tenant, { kind: 'function', name: req.name }, req.requestId, err);
      if (!(err instanceof FlurryError)) log.error({ err, requestId: req.requestId, traceId: trace?.traceId }, 'invoke failed');
      return { ok: false, error: toWireError(err), hostId };
    } finally {
      this.calls--;
      if (entry) {
        entry.calls--;
        entry.lastUsed = Date.now();
      }
      if (this.calls === 0) this.idle?.();
    }
  }

  /** A call's guest logs: published for their owner, and logged here. */
  private published(result: Pick<ChannelLogs, 'logs' | 'droppedLogLines'>, requestId: string, tenant: string, name: string, trace: TraceContext | undefined): void {
    this.deps.guestLogs.publish(tenant, { kind: 'function', name }, requestId, result);
    if (result.logs.length === 0 && result.droppedLogLines === 0) return;
    const glog = this.deps.log.child({ requestId, fn: `${tenant}/${name}`, ...(trace ? { traceId: trace.traceId } : {}) });
    for (const line of result.logs) glog[line.level]({ guest: true }, line.message);
    if (result.droppedLogLines > 0) glog.warn({ dropped: result.droppedLogLines }, 'guest log lines dropped');
  }

  /** Drops warm versions that were redeployed or deleted, from the functions bucket's updates. */
  async watch(): Promise<void> {
    const { fabric, log } = this.deps;
    this.functionsWatch = await followKv(fabric.functions, { include: 'updates' as never }, (entry) => {
      // The key says whose function it is; the value only which version is current.
      const [tenant, ...rest] = entry.key.split('.');
      const name = rest.join('.');
      let current: string | undefined;
      if (entry.operation === 'PUT' && entry.value.length > 0) {
        const record = decodeChecked('FunctionRecord', entry.value, entry.key);
        // A record that is not one says nothing about which version is current: keep what is warm.
        if (!record) return;
        current = record.digest;
      }
      for (const w of this.warm.values()) {
        if (w.tenant === tenant && w.name === name && w.digest !== current) void this.evict(w, current ? 'redeployed' : 'deleted');
      }
    }, log, 'functions', () => fabric.nc.isClosed(), fabric.link);
  }

  private async evict(w: WarmEntry, reason: string): Promise<void> {
    this.warm.delete(w.key);
    this.deps.pool.setServed(w.key, false);
    await w.sub?.drain().catch(() => undefined);
    this.deps.pool.evict(w.key);
    this.deps.onChange();
    this.deps.log.info({ fn: `${w.tenant}/${w.name}`, digest: w.digest, reason }, 'function evicted');
    this.deps.emit({ kind: 'function.evicted', at: Date.now(), tenant: w.tenant, name: w.name, digest: w.digest, hostId: this.deps.hostId, reason }, w.tenant);
  }

  /** Stops following the functions bucket. */
  close(): void {
    this.functionsWatch?.stop();
  }
}
