/**
 * A worker host: registers itself and heartbeats its record (heartbeat.ts),
 * answers the fleet's control requests (place, snapshot, fork, release,
 * cancel, host state, drain), serves the functions it holds warm
 * (warm-functions.ts), forks (forker.ts) and hosts service instances
 * (service-host.ts), and drains cleanly: stop taking calls, have the services
 * controller migrate its service instances away, finish calls in flight,
 * deregister. The controller can also set it draining or drained without
 * exiting (docs/autoscaling.md).
 */
import { availableParallelism, hostname } from 'node:os';
import type { Subscription } from '@nats-io/transport-node';
import {
  ControllerSubjects, JobSubjects,
  call, channelFrameLimit, connectFabric, FlurryError, listen, logBrokerLink, logRejectedMessagesTo, maxPayload, MetricsListener, newId, publishTo,
  rejectedMessages, serve, Subjects, traceOf,
  type BrokerLink, type DrainReply, type Fabric, type FleetEvent, type HostRecord,
  type DrainHostRequest, type HostState, type Logger, type SetHostStateReply, type SetHostStateRequest,
} from '@flurry/core';
import { GuestPool } from './guest/guest-pool.js';
import { machineMemoryBytes, type HostConfig } from './config.js';
import { detectPager } from './pager-mode.js';
import { Forker } from './forker.js';
import { guestLogPublisher } from './guest-log-publisher.js';
import { Heartbeat } from './heartbeat.js';
import { loadNativePager } from './native/pager.js';
import { ServiceHost } from './service-host.js';
import { MemoryBudget } from './memory-budget.js';
import { WarmFunctions } from './warm-functions.js';
import { CallChannels } from './call-channels.js';
import { HostMetrics } from './metrics/host-metrics.js';

/** Room kept in a reply for the envelope around a guest's output (status, headers, ids): the output cap leaves it free. */
const REPLY_HEADROOM_BYTES = 64 * 1024;

export class WorkerHost {
  readonly id: string;
  private readonly startedAt = Date.now();
  private readonly heartbeat: Heartbeat;
  private controlSubs: Subscription[] = [];
  /** Exiting: set once by drain(). */
  private draining = false;
  private drained?: Promise<void>;
  /** Set by the services controller (consolidation, drain by hand); 'active' until then. */
  private state: HostState = 'active';
  private stateReason?: string;
  private readonly pager: HostRecord['pager'];
  private readonly functions: WarmFunctions;
  private readonly forker: Forker;
  private readonly services: ServiceHost;
  /** Where /metrics is served (FLURRY_METRICS_PORT); none when it is not. */
  metricsListener?: MetricsListener;
  /** The gateway's direct call channels (FLURRY_CALL_CHANNEL); none when they are off. */
  private callChannels?: CallChannels;

  private constructor(
    private readonly config: HostConfig,
    private readonly log: Logger,
    private readonly fabric: Fabric,
    private readonly pool: GuestPool,
    private readonly budget: MemoryBudget,
    id: string,
    pager: HostRecord['pager'],
    metrics: HostMetrics,
  ) {
    this.id = id;
    this.pager = pager;
    this.heartbeat = new Heartbeat(fabric.hosts, id, fabric.link, () => this.record(), config.heartbeatMs, (config.hostTtlSeconds * 1000) / 3, log);
    const guestLogs = guestLogPublisher(fabric.nc, fabric.link, id, log);
    metrics.watch(pool, budget, guestLogs);
    this.functions = new WarmFunctions({
      hostId: id, fabric, pool, budget, log, metrics,
      takesWork: () => this.takesWork,
      exiting: () => this.draining,
      onChange: () => void this.heartbeat.beat(),
      emit: (event, tenant) => this.emit(event, tenant),
      guestLogs,
    });
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
      metrics,
      // Advertise kept parents and page caches at once, not at the next heartbeat.
      onChange: () => this.heartbeat.soon(),
      guestLogs,
    });
    this.services = new ServiceHost({
      hostId: id, nc: fabric.nc, pool, modules: fabric.modules, log,
      ensureWarm: (req) => this.functions.ensureWarm(req),
      warmKey: (tenant, name, digest) => WarmFunctions.key(tenant, name, digest),
      draining: () => !this.takesWork,
      exiting: () => this.draining,
      replyLimits: config.replyLimits,
      migrationPaceMiBPerS: config.migrationPaceMiBPerS,
      migrationYieldMaxMs: config.migrationYieldMaxMs,
      ...(config.migrationStream && config.callChannel ? { pageStream: { host: config.callChannel.host, ...(config.callChannel.advertise ? { advertise: config.callChannel.advertise } : {}) } } : {}),
      metrics,
      guestLogs,
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
      // Call threads read the gateway's calls themselves beside the host's own channel (FLURRY_CALL_THREADS).
      ...(config.callChannel?.threads && { threadChannels: { listenHost: config.callChannel.host, hostId: id, maxFrameBytes: channelFrameLimit(maxPayload(fabric.nc)) } }),
    });
    const metrics = new HostMetrics(fabric.link);
    const host = new WorkerHost(config, hostLog, fabric, pool, budget, id, pager.mode, metrics);
    if (pager.reason) hostLog.info({ pager: pager.mode, reason: pager.reason }, 'pager');
    if (config.metrics) host.metricsListener = await MetricsListener.start(metrics.registry, config.metrics, hostLog);
    if (config.callChannel) {
      const { host: listenHost, port, advertise } = config.callChannel;
      host.callChannels = await CallChannels.start({
        hostId: id, listen: { host: listenHost, port }, ...(advertise ? { advertise } : {}), maxFrameBytes: channelFrameLimit(maxPayload(fabric.nc)),
        take: (req, trace) => host.functions.take(req, trace), log: hostLog,
        threads: { grant: (digest) => pool.grantToken(digest), ports: () => pool.threadPorts() },
      });
    }
    await host.register();
    return host;
  }

  private async register(): Promise<void> {
    const { nc } = this.fabric;
    const { forker, id: hostId, log } = this;
    this.controlSubs.push(
      serve(nc, 'place', Subjects.place(hostId), (req) => this.functions.ensureWarm(req), { log }),
      serve(nc, 'drain', Subjects.drain(hostId), () => this.exitOnRequest(), { log }),
      serve(nc, 'openCalls', Subjects.openCalls(hostId), (req) => {
        if (!this.callChannels) throw new FlurryError('unavailable', `host ${hostId} takes calls only through the broker`);
        return this.callChannels.grant(req.token);
      }, { log }),
      serve(nc, 'snapshot', Subjects.snapshot(hostId), (req) => forker.snapshot(req), { log }),
      serve(nc, 'fork', Subjects.fork(hostId), (req, msg) => forker.fork(req, traceOf(msg)), { log, hostId }),
      serve(nc, 'release', Subjects.release(hostId), (req) => forker.release(req.snapshotId, req.holder, req.tenant), { log, hostId }),
      serve(nc, 'split', JobSubjects.split(hostId), (req) => forker.taskFeeds.split(req), { log, hostId }),
      serve(nc, 'cancel', JobSubjects.cancel(hostId), (req) => ({ hostId, stopped: forker.cancel(req.snapshotId, req.jobId) }), { log, hostId }),
      listen(nc, 'parentFreed', Subjects.allParentsFreed, (req) => forker.parentFreed(req), { log }),
      serve(nc, 'hostState', ControllerSubjects.hostState(hostId), (req) => this.setState(req), { log }),
    );
    this.services.start();
    void this.functions.watch();
    logBrokerLink(this.fabric.link, this.log);
    // Back from an outage: announce itself at once (its record may have expired meanwhile), and say so on core NATS,
    // which the gateway hears before the heartbeat is stored (on a cluster, the hosts stream may be electing a leader).
    this.fabric.link.onChange((up) => {
      if (!up || !this.heartbeat.running) return;
      this.emit({ kind: 'host.reconnected', at: Date.now(), hostId: this.id, startedAt: this.startedAt, brokerOutages: this.fabric.link.outages });
      void this.heartbeat.beat();
    });
    await this.heartbeat.start();
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
      cores: availableParallelism(),
      memoryBytes: machineMemoryBytes(),
      guestSlots: this.pool.size,
      runningGuests: this.pool.running,
      warm: this.functions.list(),
      pager: this.pager,
      draining: !this.takesWork,
      state,
      parents: this.forker.keptParents(),
      serviceParents: this.services.warmParents(),
      pageCaches: this.forker.pageCaches(),
      memoryBudget: this.budget.use(),
      ...(this.draining || this.stateReason ? { stateReason: this.draining ? 'exiting' : this.stateReason } : {}),
      instances,
      releasable: state === 'drained' && instances.length === 0 && this.pool.running === 0 && this.functions.inFlight === 0,
      rejectedMessages: rejectedMessages(),
      brokerOutages: this.fabric.link.outages,
    };
  }

  /** Whether the broker is reachable (main.ts exits when it has been away too long). */
  get link(): BrokerLink {
    return this.fabric.link;
  }

  private emit(event: FleetEvent, tenant = 'system'): void {
    publishTo(this.fabric.nc, 'event', Subjects.event(tenant, event.kind), event);
  }

  /** The services controller sets this host active, draining or drained (consolidation, drain by hand). */
  private async setState(req: SetHostStateRequest): Promise<SetHostStateReply> {
    if (this.draining) throw new FlurryError('unavailable', `host ${this.id} is exiting`);
    if (req.state !== this.state) {
      this.state = req.state;
      this.stateReason = req.state === 'active' ? undefined : req.reason;
      if (req.state === 'active') this.functions.serveAll();
      else await this.functions.stopServing();
      await this.fabric.nc.flush();
      this.log.info({ state: req.state, reason: req.reason }, 'host state set');
    }
    await this.heartbeat.beat();
    return { ok: true, hostId: this.id, state: this.state };
  }

  /** A drain request: answered at once, then the host drains and exits (as on SIGTERM). */
  private exitOnRequest(): DrainReply {
    setImmediate(() => void this.drain('drain requested').then(() => process.emit('SIGTERM')));
    return { ok: true, hostId: this.id };
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
    this.log.info({ reason, inFlight: this.functions.inFlight, instances: this.services.list().length }, 'draining');
    await this.heartbeat.beat();
    // Unsubscribing from the queue groups sends new calls to the other hosts.
    await this.functions.stopServing();
    if (this.services.list().length > 0) await this.moveInstancesAway(reason, deadline);
    await this.functions.settled(deadline);
    this.callChannels?.close();
    // Requests held during a migration's stop-and-copy are answered through this host: let them finish.
    while (this.services.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.heartbeat.stop();
    for (const s of this.controlSubs) s.unsubscribe();
    this.functions.close();
    // What could not be moved away is destroyed.
    this.services.close();
    this.forker.close();
    await this.heartbeat.deregister();
    this.emit({ kind: 'host.down', at: Date.now(), hostId: this.id, reason });
    await this.pool.close();
    await this.metricsListener?.close();
    await this.fabric.close();
    this.log.info({ unfinished: this.functions.inFlight }, 'drained');
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
      const reply = await call(this.fabric.nc, 'controllerExiting', ControllerSubjects.exiting(this.id), req, { timeoutMs: Math.max(1, deadline - Date.now()) });
      if (!reply.ok) throw FlurryError.fromWire(reply.error);
      this.log.info({ moved: reply.moved.length, failed: reply.failed.length, left: this.services.list().length }, 'instances moved away');
    } catch (err) {
      this.log.warn({ err: (err as Error).message, left: this.services.list().length }, 'could not move the instances away; destroying them');
    }
  }
}
