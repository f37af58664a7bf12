/**
 * A worker host: registers itself and heartbeats its capacity, places warm
 * parents of functions when the scheduler asks, answers invocations of the
 * functions it holds warm (one queue group per function version), and drains
 * cleanly: stop taking calls, have the services controller migrate its
 * service instances away, finish calls in flight, deregister. The controller
 * can also set it draining or drained without exiting (docs/autoscaling.md).
 */
import { hostname } from 'node:os';
import type { Msg, Subscription } from '@nats-io/transport-node';
import {
  ControllerSubjects, JobSubjects,
  connectFabric, decodeChecked, decodeOrRefuse, encode, FlurryError, followKv, logBrokerLink, logRejectedMessagesTo, newId,
  rejectedMessages, Subjects, InvokeQueue, toWireError,
  type BrokerLink, type Fabric, type FleetEvent, type HostRecord, type InvokeReply, type InvokeRequest,
  type DrainHostRequest, type HostState, type KvFollower, type Logger, type PlaceReply, type PlaceRequest,
  type SetHostStateReply, type WarmFunction,
} from '@flurry/core';
import { GuestPool } from './guest/guest-pool.js';
import { fetchModule } from './module-store.js';
import { machineMemoryBytes, type HostConfig } from './config.js';
import { detectPager } from './pager-mode.js';
import { Forker } from './forker.js';
import { loadNativePager } from './native/pager.js';
import { ServiceHost } from './service-host.js';
import { maxPayload, REPLY_HEADROOM_BYTES, replyWith } from './reply.js';
import { MemoryBudget } from './memory-budget.js';

interface WarmEntry extends WarmFunction {
  key: string;
  /** Its invoke queue subscription; none while the host is not active. */
  sub?: Subscription;
  /** Calls of it running here, and when the last one ended: an idle parent may be evicted for room. */
  calls: number;
  lastUsed: number;
}

export class WorkerHost {
  readonly id: string;
  private readonly startedAt = Date.now();
  private readonly warm = new Map<string, WarmEntry>();
  private readonly placing = new Map<string, Promise<PlaceReply>>();
  private heartbeat?: NodeJS.Timeout;
  private beatTimer?: NodeJS.Timeout;
  private controlSubs: Subscription[] = [];
  private functionsWatch?: KvFollower;
  private inFlight = 0;
  private idle?: () => void;
  /** Exiting: set once by drain(). */
  private draining = false;
  private drained?: Promise<void>;
  /** Set by the services controller (consolidation, drain by hand); 'active' until then. */
  private state: HostState = 'active';
  private stateReason?: string;
  private readonly pager: HostRecord['pager'];
  private readonly forker: Forker;
  private readonly services: ServiceHost;

  private constructor(
    private readonly config: HostConfig,
    private readonly log: Logger,
    private readonly fabric: Fabric,
    private readonly pool: GuestPool,
    private readonly budget: MemoryBudget,
    id: string,
    pager: HostRecord['pager'],
  ) {
    this.id = id;
    this.pager = pager;
    this.forker = new Forker({
      hostId: id,
      nc: fabric.nc,
      link: fabric.link,
      modules: fabric.modules,
      pool,
      pager: pager === 'userfaultfd' ? loadNativePager() : undefined,
      log,
      parentIdleMs: config.parentIdleMs,
      parentCacheBytes: config.parentCacheBytes,
      budget,
      // Advertise kept parents and page caches at once, not at the next heartbeat.
      onChange: () => this.beatSoon(),
    });
    this.services = new ServiceHost({
      hostId: id, nc: fabric.nc, pool, modules: fabric.modules, log,
      ensureWarm: (req) => this.ensureWarm(req),
      warmKey: (tenant, name, digest) => WorkerHost.warmKey(tenant, name, digest),
      draining: () => !this.takesWork,
      exiting: () => this.draining,
      replyLimits: config.replyLimits,
    });
  }

  static async start(config: HostConfig, log: Logger): Promise<WorkerHost> {
    const id = config.hostId ?? newId('host');
    const hostLog = config.hostId ? log : log.child({ hostId: id });
    logRejectedMessagesTo(hostLog);
    const pager = await detectPager(config.pager);
    const fabric = await connectFabric({ servers: config.natsServers, name: `flurry-host-${id}`, hostTtlSeconds: config.hostTtlSeconds, maxOutageMs: config.natsMaxOutageMs, storeLimits: config.storeLimits, replicas: config.jsReplicas, log: hostLog, auth: config.natsAuth });
    // An output must fit a reply the broker takes, with room for the envelope.
    const maxOutputBytes = Math.min(config.maxOutputBytes, maxPayload(fabric.nc) - REPLY_HEADROOM_BYTES);
    if (maxOutputBytes < config.maxOutputBytes) hostLog.info({ maxOutputBytes, configured: config.maxOutputBytes, maxPayload: maxPayload(fabric.nc) }, 'output cap lowered to fit the broker\'s max_payload');
    const budget = new MemoryBudget(config.memoryBudgetBytes, (holding, kind, bytes) => hostLog.info({ holding, kind, bytes }, 'evicted to make room in the memory budget'));
    const pool = await GuestPool.start({
      threads: config.guestThreads,
      instanceThreads: config.instanceThreads,
      maxGuestMemoryBytes: config.maxGuestMemoryBytes,
      budget,
      limits: {
        callTimeoutMs: config.callTimeoutMs,
        initTimeoutMs: config.initTimeoutMs,
        maxOutputBytes,
        maxLogLines: 64,
        maxLogBytes: 64 * 1024,
      },
      log: hostLog,
      pager: pager.mode === 'userfaultfd' ? 'native' : 'portable',
    });
    const host = new WorkerHost(config, hostLog, fabric, pool, budget, id, pager.mode);
    if (pager.reason) hostLog.info({ pager: pager.mode, reason: pager.reason }, 'pager');
    await host.register();
    return host;
  }

  private async register(): Promise<void> {
    const { nc } = this.fabric;
    this.controlSubs.push(
      nc.subscribe(Subjects.place(this.id), { callback: (_e, msg) => void this.onPlace(msg) }),
      nc.subscribe(Subjects.drain(this.id), { callback: (_e, msg) => void this.onDrainRequest(msg) }),
      nc.subscribe(Subjects.snapshot(this.id), { callback: (_e, msg) => void this.forker.onSnapshot(msg) }),
      nc.subscribe(Subjects.fork(this.id), { callback: (_e, msg) => void this.forker.onFork(msg) }),
      nc.subscribe(Subjects.release(this.id), { callback: (_e, msg) => void this.forker.onRelease(msg) }),
      nc.subscribe(JobSubjects.cancel(this.id), { callback: (_e, msg) => void this.forker.onCancel(msg) }),
      nc.subscribe(Subjects.allParentsFreed, { callback: (_e, msg) => this.forker.onParentFreed(msg.data) }),
      nc.subscribe(ControllerSubjects.hostState(this.id), { callback: (_e, msg) => void this.onSetState(msg) }),
    );
    this.services.start();
    void this.watchFunctions();
    logBrokerLink(this.fabric.link, this.log);
    // Back from an outage: announce itself at once (its record may have expired meanwhile), and say so on core NATS,
    // which the gateway hears before the heartbeat is stored (on a cluster, the hosts stream may be electing a leader).
    this.fabric.link.onChange((up) => {
      if (!up || !this.heartbeat) return;
      this.emit({ kind: 'host.reconnected', at: Date.now(), hostId: this.id, startedAt: this.startedAt, brokerOutages: this.fabric.link.outages });
      void this.beat();
    });
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.config.heartbeatMs);
    this.heartbeat.unref();
    this.emit({ kind: 'host.up', at: Date.now(), hostId: this.id });
    this.log.info({ guestSlots: this.pool.size, pager: this.pager, memoryBudgetBytes: this.budget.budgetBytes }, 'host registered');
  }

  /** Active and not exiting: takes new calls, placements and instances. */
  private get takesWork(): boolean {
    return !this.draining && this.state === 'active';
  }

  record(): HostRecord {
    const instances = this.services.list();
    const state: HostState = this.draining ? 'draining' : this.state;
    return {
      id: this.id,
      pid: process.pid,
      hostname: hostname(),
      startedAt: this.startedAt,
      heartbeatAt: Date.now(),
      cores: this.pool.size,
      memoryBytes: machineMemoryBytes(),
      guestSlots: this.pool.size,
      runningGuests: this.pool.running,
      warm: [...this.warm.values()].map(({ tenant, name, digest }) => ({ tenant, name, digest })),
      pager: this.pager,
      draining: !this.takesWork,
      state,
      parents: this.forker.keptParents(),
      pageCaches: this.forker.pageCaches(),
      memoryBudget: this.budget.use(),
      ...(this.draining || this.stateReason ? { stateReason: this.draining ? 'exiting' : this.stateReason } : {}),
      instances,
      releasable: state === 'drained' && instances.length === 0 && this.pool.running === 0 && this.inFlight === 0,
      rejectedMessages: rejectedMessages(),
      brokerOutages: this.fabric.link.outages,
    };
  }

  /** One heartbeat shortly, for changes others act on (kept parents); several changes at once make one. */
  private beatSoon(): void {
    if (this.beatTimer || !this.heartbeat) return;
    this.beatTimer = setTimeout(() => {
      this.beatTimer = undefined;
      void this.beat();
    }, 20);
    this.beatTimer.unref();
  }

  /** Whether the broker is reachable (main.ts exits when it has been away too long). */
  get link(): BrokerLink {
    return this.fabric.link;
  }

  private async beat(): Promise<void> {
    // Nothing reaches the hosts bucket while the broker is away; the reconnect beats at once.
    if (!this.fabric.link.connected) return;
    try {
      await this.fabric.hosts.put(this.id, encode(this.record()));
    } catch (err) {
      this.log.warn({ err }, 'heartbeat failed');
    }
  }

  private emit(event: FleetEvent, tenant = 'system'): void {
    this.fabric.nc.publish(Subjects.event(tenant, event.kind), encode(event));
  }

  private static warmKey(tenant: string, name: string, digest: string): string {
    return `${tenant}.${name}@${digest}`;
  }

  private async onPlace(msg: Msg): Promise<void> {
    let req: PlaceRequest;
    try {
      req = decodeOrRefuse('PlaceRequest', msg.data, msg.subject);
    } catch (err) {
      msg.respond(encode({ ok: false, error: { code: 'bad_request', message: `bad place request: ${(err as Error).message}` } } satisfies PlaceReply));
      return;
    }
    msg.respond(encode(await this.ensureWarm(req)));
  }

  /** Warms a function version here (one attempt at a time per version); also used by service instances. */
  private ensureWarm(req: PlaceRequest): Promise<PlaceReply> {
    const key = WorkerHost.warmKey(req.tenant, req.name, req.digest);
    let pending = this.placing.get(key);
    if (!pending) {
      pending = this.place(key, req).finally(() => this.placing.delete(key));
      this.placing.set(key, pending);
    }
    return pending;
  }

  private async place(key: string, req: PlaceRequest): Promise<PlaceReply> {
    const log = this.log.child({ requestId: req.requestId, fn: `${req.tenant}/${req.name}` });
    // A host that is not active may still warm a version (for a migration it receives); it does not serve calls of it.
    if (this.draining) return { ok: false, error: { code: 'unavailable', message: `host ${this.id} is draining` } };
    if (this.warm.has(key)) return { ok: true, hostId: this.id, initMs: 0 };
    try {
      const bytes = await fetchModule(this.fabric.modules, req.tenant, req.digest);
      const info = await this.pool.warm(key, bytes, undefined, req.requestId, req.tenant);
      const entry: WarmEntry = { key, tenant: req.tenant, name: req.name, digest: req.digest, calls: 0, lastUsed: Date.now() };
      if (this.takesWork) this.serveCalls(entry);
      this.warm.set(key, entry);
      this.budget.evictable(GuestPool.snapshotHolding(key), {
        // Idle: no call running and no service instance cloned from it (evicting would destroy them).
        idleSince: () => (entry.calls === 0 && !this.pool.instances().some((i) => i.key === key) ? entry.lastUsed : undefined),
        evict: () => void this.evict(entry, 'memory budget'),
      });
      await this.fabric.nc.flush();
      void this.beat();
      log.info({ initMs: Math.round(info.initMs * 100) / 100, memoryBytes: info.memoryBytes }, 'function placed');
      this.emit({ kind: 'function.placed', at: Date.now(), tenant: req.tenant, name: req.name, digest: req.digest, hostId: this.id, initMs: info.initMs, requestId: req.requestId }, req.tenant);
      return { ok: true, hostId: this.id, initMs: info.initMs };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'placement failed');
      this.pool.evict(key);
      return { ok: false, error: toWireError(err) };
    }
  }

  /** Joins the version's invoke queue group: function calls reach this host. */
  private serveCalls(w: WarmEntry): void {
    w.sub ??= this.fabric.nc.subscribe(Subjects.invoke(w.tenant, w.name, w.digest), {
      queue: InvokeQueue,
      callback: (_e, m) => void this.onInvoke(m, w.key),
    });
  }

  /** Leaves every invoke queue group: new function calls go to the other hosts. */
  private async stopCalls(): Promise<void> {
    await Promise.all([...this.warm.values()].map(async (w) => {
      const sub = w.sub;
      w.sub = undefined;
      await sub?.drain().catch(() => undefined);
    }));
  }

  private async onInvoke(msg: Msg, key: string): Promise<void> {
    this.inFlight++;
    const entry = this.warm.get(key);
    if (entry) entry.calls++;
    let reply: InvokeReply;
    let req: InvokeRequest | undefined;
    try {
      req = decodeOrRefuse('InvokeRequest', msg.data, msg.subject);
      const result = await this.pool.handle(key, { method: req.method, path: req.path, query: req.query, headers: req.headers, body: req.body }, req.requestId);
      if (result.logs.length > 0 || result.droppedLogLines > 0) {
        const glog = this.log.child({ requestId: req.requestId, fn: `${req.tenant}/${req.name}` });
        for (const line of result.logs) glog[line.level]({ guest: true }, line.message);
        if (result.droppedLogLines > 0) glog.warn({ dropped: result.droppedLogLines }, 'guest log lines dropped');
      }
      reply = { ok: true, status: result.status, headers: result.headers, body: result.body, hostId: this.id, durationMs: result.durationMs };
    } catch (err) {
      if (!(err instanceof FlurryError)) this.log.error({ err, requestId: req?.requestId }, 'invoke failed');
      reply = { ok: false, error: toWireError(err), hostId: this.id };
    } finally {
      this.inFlight--;
      if (entry) {
        entry.calls--;
        entry.lastUsed = Date.now();
      }
      if (this.inFlight === 0) this.idle?.();
    }
    replyWith(msg, this.fabric.nc, reply, (bytes, limit) => ({
      ok: false, hostId: this.id, error: { code: 'output_limit', message: `the answer (${bytes} bytes) is larger than the broker takes (max_payload ${limit})` },
    } satisfies InvokeReply), this.log);
  }

  /** Drops warm parents of function versions that were redeployed or deleted. */
  private async watchFunctions(): Promise<void> {
    this.functionsWatch = await followKv(this.fabric.functions, { include: 'updates' as never }, (entry) => {
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
    }, this.log, 'functions', () => this.fabric.nc.isClosed(), this.fabric.link);
  }

  private async evict(w: WarmEntry, reason: string): Promise<void> {
    this.warm.delete(w.key);
    await w.sub?.drain().catch(() => undefined);
    this.pool.evict(w.key);
    void this.beat();
    this.log.info({ fn: `${w.tenant}/${w.name}`, digest: w.digest, reason }, 'function evicted');
    this.emit({ kind: 'function.evicted', at: Date.now(), tenant: w.tenant, name: w.name, digest: w.digest, hostId: this.id, reason }, w.tenant);
  }

  /** The services controller sets this host active, draining or drained (consolidation, drain by hand). */
  private async onSetState(msg: Msg): Promise<void> {
    let reply: SetHostStateReply;
    try {
      const req = decodeOrRefuse('SetHostStateRequest', msg.data, msg.subject);
      if (this.draining) throw new FlurryError('unavailable', `host ${this.id} is exiting`);
      if (req.state !== this.state) {
        this.state = req.state;
        this.stateReason = req.state === 'active' ? undefined : req.reason;
        if (req.state === 'active') for (const w of this.warm.values()) this.serveCalls(w);
        else await this.stopCalls();
        await this.fabric.nc.flush();
        this.log.info({ state: req.state, reason: req.reason }, 'host state set');
      }
      await this.beat();
      reply = { ok: true, hostId: this.id, state: this.state };
    } catch (err) {
      reply = { ok: false, error: toWireError(err) };
    }
    msg.respond(encode(reply));
  }

  private async onDrainRequest(msg: Msg): Promise<void> {
    if (!decodeChecked('DrainRequest', msg.data, msg.subject)) {
      msg.respond(encode({ ok: false, error: { code: 'bad_request', message: 'malformed DrainRequest' } }));
      return;
    }
    msg.respond(encode({ ok: true, hostId: this.id }));
    await this.drain('drain requested');
    process.emit('SIGTERM');
  }

  /**
   * Stops taking work, lets calls in flight finish (up to the drain timeout),
   * deregisters and closes. Idempotent.
   */
  drain(reason: string): Promise<void> {
    this.drained ??= this.doDrain(reason);
    return this.drained;
  }

  private async doDrain(reason: string): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + this.config.drainTimeoutMs;
    this.log.info({ reason, inFlight: this.inFlight, instances: this.services.list().length }, 'draining');
    await this.beat();
    // Unsubscribing from the queue groups sends new calls to the other hosts.
    await this.stopCalls();
    if (this.services.list().length > 0) await this.moveInstancesAway(reason, deadline);
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => (this.idle = resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
      ]);
    }
    // Requests held during a migration's stop-and-copy are answered through this host: let them finish.
    while (this.services.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    clearTimeout(this.beatTimer);
    for (const s of this.controlSubs) s.unsubscribe();
    this.functionsWatch?.stop();
    // What could not be moved away is destroyed.
    this.services.close();
    this.forker.close();
    await this.fabric.hosts.delete(this.id).catch((err: unknown) => this.log.warn({ err }, 'deregister failed'));
    this.emit({ kind: 'host.down', at: Date.now(), hostId: this.id, reason });
    await this.pool.close();
    await this.fabric.close();
    this.log.info({ unfinished: this.inFlight }, 'drained');
  }

  /**
   * Asks the active services controller to migrate this host's instances to
   * other hosts and waits for it (until the drain deadline). Without a
   * controller, or where no host can take them, the instances stay and the
   * drain destroys them.
   */
  private async moveInstancesAway(reason: string, deadline: number): Promise<void> {
    const req: DrainHostRequest = { requestId: newId('req'), hostId: this.id, reason, exiting: true };
    try {
      const msg = await this.fabric.nc.request(ControllerSubjects.exiting(this.id), encode(req), { timeout: Math.max(1, deadline - Date.now()) });
      const reply = decodeOrRefuse('DrainHostReply', msg.data, msg.subject);
      if (!reply.ok) throw FlurryError.fromWire(reply.error);
      this.log.info({ moved: reply.moved.length, failed: reply.failed.length, left: this.services.list().length }, 'instances moved away');
    } catch (err) {
      this.log.warn({ err: (err as Error).message, left: this.services.list().length }, 'could not move the instances away; destroying them');
    }
  }
}
