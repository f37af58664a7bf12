/**
 * A whole fleet on this machine: its own nats-server (or a cluster of them,
 * or an existing one), a gateway and N worker hosts, each a separate
 * process. `npm start`, the integration tests and the benchmarks all use
 * this one helper.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inlineKeyItems, type NatsAuth } from '@flurry/core';
import { freePort } from './free-port.js';
import { startFleetNetwork, type FleetNetwork, type FleetNetworkKind, type ProcessAddress } from './fleet-network.js';
import { startNatsCluster, type RunningNatsCluster } from './nats-cluster.js';
import { startNatsServer, type RunningNatsServer } from './nats-server.js';
import { FleetCredentials } from './nats-permissions.js';
import { startGateway, startHost, type RunningService } from './services.js';

export interface LocalFleetOptions {
  hosts: number;
  /** Use this server instead of starting one. */
  natsUrl?: string;
  /**
   * How many nats-server nodes to start (default 1, a single server): 2 or
   * more form a cluster (nats-cluster.ts), and every process gets all their
   * URLs and FLURRY_JS_REPLICAS = min(3, nodes) unless `env` sets it.
   */
  natsCluster?: number;
  /**
   * Where the processes run (fleet-network.ts): `loopback` (default), or
   * `netns`: each nats node, the gateway and each host in a network
   * namespace of its own with its own address (root and iproute2; see
   * docs/multi-host.md). With `netns`, `url` and `adminConnectOptions()`
   * lead in through the namespace entry, `natsUrl` is what the processes use.
   */
  network?: FleetNetworkKind;
  /** The started nats-server's max_payload (default 8 MiB). */
  natsMaxPayloadBytes?: number;
  /** The started single nats-server serves its monitoring endpoint (`natsMonitorUrl`: /varz, bytes and messages in and out; benchmarks). */
  natsMonitor?: boolean;
  /** Folder for nats-server's store and the logs; a temporary one (removed on stop) when not given. */
  dataDir?: string;
  gatewayPort?: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  hostEnv?: Record<string, string>;
  /**
   * Without FLURRY_API_KEYS, FLURRY_API_KEYS_FILE or FLURRY_AUTH in `env` or
   * `gatewayEnv`, the gateway runs without authentication (FLURRY_AUTH=none).
   */
  gatewayEnv?: Record<string, string>;
  /** The key this helper sends itself (waiting for hosts); default: the first key of FLURRY_API_KEYS. */
  apiKey?: string;
  onLine?: (service: string, line: string) => void;
}

export class LocalFleet {
  /** The extra environment of hosts started by addHost, for restartHost. */
  private readonly addedHostEnv = new Map<string, Record<string, string>>();

  private constructor(
    readonly natsUrl: string,
    public url: string,
    readonly dataDir: string,
    public gateway: RunningService,
    readonly hosts: RunningService[],
    /** The fleet's own single nats-server, or its cluster; neither for a fleet given natsUrl. */
    private nats: RunningNatsServer | undefined,
    private readonly natsCluster: RunningNatsCluster | undefined,
    private readonly removeDataDir: boolean,
    private readonly opts: LocalFleetOptions,
    /** The NATS users of a fleet that started its own server (nats-permissions.ts). */
    readonly credentials: FleetCredentials | undefined,
    /** Where its processes run; `network.bytes(name)` counts what a namespaced process exchanged. */
    readonly network: FleetNetwork,
    /** The nats nodes' URLs as this process reaches them (through the namespace entry on `netns`). */
    private readonly adminServers: string[],
  ) {}

  /**
   * The environment of this fleet's gateway: what another replica needs to
   * join it (its NATS user, the authentication mode or keys, the callback
   * master secret). Tests and benchmarks add to it.
   */
  replicaGatewayEnv(): Record<string, string> {
    return replicaEnv(this.opts, this.credentials);
  }

  /** Only the gateway's NATS user (NATS_USER, ...): for a gateway of other settings on this fleet's broker. */
  gatewayNatsEnv(): Record<string, string> {
    return this.credentials ? FleetCredentials.env(this.credentials.gateway) : {};
  }

  /** The fleet's own single nats-server's monitoring endpoint (`http://host:port`), when started with `natsMonitor`. */
  get natsMonitorUrl(): string | undefined {
    return this.nats?.monitorUrl;
  }

  /** Options to connect to this fleet's NATS as its admin user (tests, benchmarks, tools). */
  adminConnectOptions(): { servers: string[]; user?: string; pass?: string; inboxPrefix?: string; ignoreClusterUpdates?: boolean } {
    const a = this.credentials?.admin;
    const servers = [...this.adminServers];
    // In namespaces the nodes gossip their own addresses, which this process cannot reach: keep to the entry's.
    const reach = this.network.kind === 'netns' ? { ignoreClusterUpdates: true } : {};
    return a ? { servers, user: a.user, pass: a.password, inboxPrefix: a.inboxPrefix, ...reach } : { servers, ...reach };
  }

  static async start(opts: LocalFleetOptions): Promise<LocalFleet> {
    // FLURRY_FLEET_LOG_LEVEL overrides every service's LOG_LEVEL (debug logs of a test's fleet, with FLURRY_KEEP_FLEET_DIRS).
    const level = process.env.FLURRY_FLEET_LOG_LEVEL;
    if (level) opts = { ...opts, env: { ...opts.env, LOG_LEVEL: level }, hostEnv: { ...opts.hostEnv, LOG_LEVEL: level }, gatewayEnv: { ...opts.gatewayEnv, LOG_LEVEL: level } };
    // FLURRY_KEEP_FLEET_DIRS=<folder>: every fleet's store and logs stay there after it stops (to read why a test failed).
    const keepIn = process.env.FLURRY_KEEP_FLEET_DIRS;
    const removeDataDir = !opts.dataDir && !keepIn;
    const dataDir = opts.dataDir ?? mkdtempSync(join(keepIn ?? tmpdir(), 'flurry-'));
    const clusterNodes = opts.natsCluster ?? 1;
    if (!Number.isInteger(clusterNodes) || clusterNodes < 1) throw new Error(`natsCluster must be a whole number of nodes, at least 1, got ${opts.natsCluster}`);
    if (opts.natsUrl && clusterNodes > 1) throw new Error('natsCluster starts nats-server nodes: it cannot go with natsUrl (a broker given by URL)');
    if (opts.natsUrl && opts.network === 'netns') throw new Error('network netns places the nats-server nodes it starts: it cannot go with natsUrl (a broker given by URL)');
    // Replicated stores on a cluster: three copies survive the loss of one node (of three or more).
    if (clusterNodes > 1) opts = { ...opts, env: { FLURRY_JS_REPLICAS: String(Math.min(3, clusterNodes)), ...opts.env } };
    let nats: RunningNatsServer | undefined;
    let cluster: RunningNatsCluster | undefined;
    const started: RunningService[] = [];
    const network = await startFleetNetwork(opts.network ?? 'loopback');
    try {
      const hostIds = Array.from({ length: opts.hosts }, (_, i) => `host-${i + 1}`);
      // A fleet with its own server runs it with users and permissions; one given by URL is the operator's.
      const credentials = opts.natsUrl ? undefined : FleetCredentials.generate(hostIds);
      if (credentials) writeAdminCredentials(dataDir, credentials.admin);
      const authorization = credentials?.authorizationConfig();
      if (clusterNodes > 1) {
        const places = await Promise.all(Array.from({ length: clusterNodes }, (_, i) => network.place(natsNodeName(i))));
        cluster = await startNatsCluster({ nodes: clusterNodes, dataDir, maxPayloadBytes: opts.natsMaxPayloadBytes, authorization, placeNode: (i) => places[i]! });
      } else if (!opts.natsUrl) {
        const place = await network.place(natsNodeName(0));
        nats = await startNatsServer({ dataDir: join(dataDir, 'nats'), maxPayloadBytes: opts.natsMaxPayloadBytes, authorization, host: place.host, wrapCommand: place.wrapCommand, monitor: opts.natsMonitor });
      }
      const natsUrl = opts.natsUrl ?? cluster?.url ?? nats!.url;
      opts = { ...opts, gatewayEnv: { ...callbackSecretEnv(dataDir, { ...process.env, ...opts.env, ...opts.gatewayEnv }), ...opts.gatewayEnv } };
      // The gateway and the hosts start at once: each creates the stores it needs (racing is safe, store-limits.ts)
      // and the gateway learns of hosts from their heartbeats whenever they come. Every start is awaited before a
      // failure is thrown, so that the processes that did start are killed below.
      const starts = await Promise.allSettled([
        // A port of its own rather than the kernel's pick: restartGateway binds it again (free-port.ts).
        opts.gatewayPort !== undefined
          ? LocalFleet.spawnGateway(network, natsUrl, dataDir, opts, opts.gatewayPort, replicaEnv(opts, credentials))
          : LocalFleet.spawnGatewayOnFreePort(network, natsUrl, dataDir, opts, replicaEnv(opts, credentials)),
        ...hostIds.map((id) => LocalFleet.spawnHost(network, natsUrl, dataDir, opts, id, credentials?.host(id))),
      ]);
      for (const s of starts) if (s.status === 'fulfilled') started.push(s.value);
      const failed = starts.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      const [gateway, ...hosts] = started as [RunningService, ...RunningService[]];
      const adminServers = await Promise.all(natsUrl.split(',').map((u) => reachableUrl(network, u)));
      const fleet = new LocalFleet(natsUrl, await reachableUrl(network, String(gateway.ready.url)), dataDir, gateway, hosts, nats, cluster, removeDataDir, opts, credentials, network, adminServers);
      await fleet.waitForHosts(opts.hosts);
      return fleet;
    } catch (err) {
      await Promise.all(started.map((s) => s.kill()));
      await nats?.stop();
      await cluster?.stop();
      await network.close();
      if (removeDataDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  private static async spawnHost(network: FleetNetwork, natsUrl: string, dataDir: string, opts: LocalFleetOptions, hostId: string, auth: NatsAuth | undefined): Promise<RunningService> {
    const place = await network.place(hostId);
    return startHost({
      natsUrl,
      hostId,
      wrapCommand: place.wrapCommand,
      // In a namespace the gateway reaches the host's call channel at the host's own address, not at its loopback.
      env: { ...(await metricsEnv(network, place)), ...(network.kind === 'netns' ? { FLURRY_CALL_CHANNEL: `${place.host}:0` } : {}), ...opts.env, ...opts.hostEnv, ...(auth ? FleetCredentials.env(auth) : {}) },
      logFile: join(dataDir, 'logs', `${hostId}.log`),
      onLine: opts.onLine && ((l) => opts.onLine!(hostId, l)),
    });
  }

  /** The gateway, listening on its place's address (FLURRY_LISTEN) in a namespace. */
  private static async spawnGateway(network: FleetNetwork, natsUrl: string, dataDir: string, opts: LocalFleetOptions, port: number, env: Record<string, string>): Promise<RunningService> {
    const place = await network.place('gateway');
    const withMetrics = { ...(await metricsEnv(network, place)), ...env };
    return startGateway({
      natsUrl,
      port,
      env: network.kind === 'netns' ? { ...withMetrics, FLURRY_LISTEN: place.host } : withMetrics,
      wrapCommand: place.wrapCommand,
      logFile: join(dataDir, 'logs', 'gateway.log'),
      onLine: opts.onLine && ((l) => opts.onLine!('gateway', l)),
    });
  }

  /**
   * The gateway on ports freePort picked, picked again when another process bound one first (freePort
   * narrows that race, it cannot close it: CI saw a gateway exit with EADDRINUSE once).
   */
  private static async spawnGatewayOnFreePort(network: FleetNetwork, natsUrl: string, dataDir: string, opts: LocalFleetOptions, env: Record<string, string>): Promise<RunningService> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await LocalFleet.spawnGateway(network, natsUrl, dataDir, opts, await freePort(), env);
      } catch (err) {
        if (attempt >= 3 || !(err as Error).message.includes('EADDRINUSE')) throw err;
      }
    }
  }

  /** Where `name` (`gateway` or a host's id) serves its metrics, as this process reaches it (docs/observability.md). */
  async metricsUrl(name: string): Promise<string> {
    const service = name === 'gateway' ? this.gateway : this.hosts.find((h) => h.ready.hostId === name);
    const url = service?.ready.metricsUrl;
    if (typeof url !== 'string') throw new Error(`${name} serves no metrics (FLURRY_METRICS_PORT is 0 or it is not in this fleet)`);
    const u = new URL(url);
    return `${await reachableUrl(this.network, u.origin)}${u.pathname}`;
  }

  /** Starts one more host process (tests of failure and drain). */
  async addHost(hostId: string, env: Record<string, string> = {}): Promise<RunningService> {
    const h = await LocalFleet.spawnHost(this.network, this.natsUrl, this.dataDir, { ...this.opts, hostEnv: { ...this.opts.hostEnv, ...env } }, hostId, await this.hostAuth(hostId));
    this.hosts.push(h);
    this.addedHostEnv.set(hostId, env);
    return h;
  }

  /**
   * Starts a host's process again with the same id and environment, after
   * SIGKILLing the old one if it still runs: the launcher's supervisor, and
   * tests of a host that comes back.
   */
  async restartHost(hostId: string): Promise<RunningService> {
    const at = this.hosts.findIndex((h) => h.ready.hostId === hostId);
    if (at < 0) throw new Error(`this fleet has no host ${hostId}`);
    await this.hosts[at].kill();
    const env = this.addedHostEnv.get(hostId) ?? {};
    const h = await LocalFleet.spawnHost(this.network, this.natsUrl, this.dataDir, { ...this.opts, hostEnv: { ...this.opts.hostEnv, ...env } }, hostId, await this.hostAuth(hostId));
    this.hosts[at] = h;
    return h;
  }

  /** A host's NATS user; a host new to this fleet gets one, and the server reloads its users first. */
  private async hostAuth(hostId: string): Promise<NatsAuth | undefined> {
    if (!this.credentials) return undefined;
    if (this.credentials.hostIds().includes(hostId)) return this.credentials.host(hostId);
    const auth = this.credentials.addHost(hostId);
    await (this.natsCluster ?? this.nats)?.reloadAuthorization(this.credentials.authorizationConfig());
    return auth;
  }

  /**
   * Replaces the gateway process on the same port: SIGKILL (`hard`, default)
   * or SIGTERM, then a new one. Tests of a coordinator that dies mid-job.
   */
  async restartGateway(opts: { hard?: boolean } = {}): Promise<RunningService> {
    const port = Number(new URL(String(this.gateway.ready.url)).port);
    if (opts.hard ?? true) await this.gateway.kill();
    else await this.gateway.stop(5000);
    this.gateway = await LocalFleet.spawnGateway(this.network, this.natsUrl, this.dataDir, this.opts, port, this.replicaGatewayEnv());
    this.url = await reachableUrl(this.network, String(this.gateway.ready.url));
    return this.gateway;
  }

  /**
   * Stops the fleet's nats-server and starts it again on the same port with
   * the same JetStream store, after `downMs` (the broker unreachable that
   * long). `hard`: SIGKILL instead of a clean shutdown. Tests and the chaos
   * soak of NATS outages; only for a fleet that started its own server.
   */
  async restartNats(opts: { downMs?: number; hard?: boolean } = {}): Promise<void> {
    const nats = this.nats;
    if (this.natsCluster) throw new Error('this fleet runs a nats cluster: stop and start its nodes (stopNatsNode, startNatsNode)');
    if (!nats) throw new Error('this fleet uses a nats-server it did not start');
    await nats.stop({ hard: opts.hard });
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    const place = await this.network.place(natsNodeName(0));
    this.nats = await startNatsServer({ dataDir: join(this.dataDir, 'nats'), port: nats.port, maxPayloadBytes: this.opts.natsMaxPayloadBytes, authorization: this.credentials?.authorizationConfig(), host: place.host, wrapCommand: place.wrapCommand, monitor: this.opts.natsMonitor });
  }

  /**
   * Stops node `index` (0-based) of the fleet's nats cluster: a clean
   * shutdown, or SIGKILL with `hard`. Its clients reconnect to the others.
   */
  async stopNatsNode(index: number, opts: { hard?: boolean } = {}): Promise<void> {
    await this.ownCluster().stopNode(index, opts);
  }

  /** Starts node `index` of the fleet's nats cluster again, on its address and with its store: it rejoins the cluster. */
  async startNatsNode(index: number): Promise<void> {
    await this.ownCluster().startNode(index);
  }

  /** The server_name of each node of the fleet's nats cluster (what stream info names as leader and replicas). */
  natsNodeNames(): string[] {
    return this.ownCluster().addresses.map((a) => a.name);
  }

  private ownCluster(): RunningNatsCluster {
    if (!this.natsCluster) throw new Error('this fleet runs no nats cluster (start it with natsCluster: 3)');
    return this.natsCluster;
  }

  /** Waits until the gateway lists `count` live hosts. */
  async waitForHosts(count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const key = this.opts.apiKey ?? firstInlineKey(gatewayEnv(this.opts).FLURRY_API_KEYS);
      const res = await fetch(`${this.url}/v1/hosts`, { headers: key ? { authorization: `Bearer ${key}` } : {} }).catch(() => undefined);
      if (res?.ok) {
        const body = (await res.json()) as { hosts: unknown[] };
        if (body.hosts.length === count) return;
      }
      if (Date.now() > deadline) throw new Error(`the gateway did not see ${count} hosts within ${timeoutMs} ms`);
      // Every fleet start ends here: a short poll, since the last heartbeat is usually a few ms away.
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    await this.gateway.stop(5000);
    await Promise.all(this.hosts.map((h) => h.stop(10_000)));
    await this.nats?.stop();
    await this.natsCluster?.stop();
    await this.network.close();
    if (this.removeDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Each process's own metrics listener (FLURRY_METRICS_PORT), which the
 * environment given may override (0: none): on loopback a port free now, in
 * a network namespace of its own the usual port on its own address.
 */
async function metricsEnv(network: FleetNetwork, place: ProcessAddress): Promise<Record<string, string>> {
  if (network.kind === 'netns') return { FLURRY_METRICS_PORT: String(NAMESPACED_METRICS_PORT), FLURRY_METRICS_LISTEN: place.host };
  return { FLURRY_METRICS_PORT: String(await freePort()) };
}

/** The port OpenTelemetry's Prometheus exporter uses by default: free in a namespace of its own. */
const NAMESPACED_METRICS_PORT = 9464;

/** nats-server node `index`'s name in the fleet's network (the same as its server_name in a cluster). */
function natsNodeName(index: number): string {
  return `nats-${index + 1}`;
}

/** A fleet process's URL (`http://10.77.0.3:8080`, `nats://...`) as this process reaches it: the same on loopback. */
async function reachableUrl(network: FleetNetwork, url: string): Promise<string> {
  // A broker given by URL keeps its credentials and default port as given.
  if (network.kind === 'loopback') return url;
  const u = new URL(url);
  const at = await network.reach(u.hostname, Number(u.port));
  return `${u.protocol}//${at.host}:${at.port}`;
}

/**
 * The gateways' callback master secret (docs/jobs.md, "Callbacks"): made
 * once in the fleet's folder, so a restarted gateway (and `npm start` run
 * again on the same folder) signs with the same tenant secrets. Nothing when
 * the environment names a secret already.
 */
function callbackSecretEnv(dataDir: string, env: Record<string, string | undefined>): Record<string, string> {
  if (env.FLURRY_CALLBACK_SECRET || env.FLURRY_CALLBACK_SECRET_FILE) return {};
  const file = join(dataDir, 'callback-secret');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  }
  return { FLURRY_CALLBACK_SECRET_FILE: file };
}

/** A gateway's whole environment: its settings and its NATS user. */
function replicaEnv(opts: LocalFleetOptions, credentials: FleetCredentials | undefined): Record<string, string> {
  return { ...gatewayEnv(opts), ...(credentials ? FleetCredentials.env(credentials.gateway) : {}) };
}

/** The gateway's own settings: a fleet given no keys runs open, as most tests and the benchmarks expect. */
function gatewayEnv(opts: LocalFleetOptions): Record<string, string> {
  const env = { ...opts.env, ...opts.gatewayEnv };
  const auth = env.FLURRY_AUTH ?? env.FLURRY_API_KEYS ?? env.FLURRY_API_KEYS_FILE;
  return auth === undefined ? { ...env, FLURRY_AUTH: 'none' } : env;
}

/** `key=tenant[:role],...` -> the first key. */
function firstInlineKey(keys: string | undefined): string | undefined {
  return inlineKeyItems(keys ?? '')[0]?.key;
}

/** The admin user's credentials, for tools pointed at this fleet (`nats --user admin --password …`): readable by the operator only. */
function writeAdminCredentials(dataDir: string, admin: NatsAuth): void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, ADMIN_CREDENTIALS_FILE);
  writeFileSync(file, JSON.stringify({ user: admin.user, password: admin.password }, null, 2) + '\n', { mode: 0o600 });
  // A file left by an earlier start keeps its mode through writeFileSync.
  chmodSync(file, 0o600);
}

export const ADMIN_CREDENTIALS_FILE = 'nats-admin.json';
