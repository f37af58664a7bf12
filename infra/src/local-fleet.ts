/**
 * A whole fleet on this machine: its own nats-server (or an existing one),
 * a gateway and N worker hosts, each a separate process. `npm start`, the
 * integration tests and the benchmarks all use this one helper.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type RunningNatsServer } from './nats-server.js';
import { startGateway, startHost, type RunningService } from './services.js';

export interface LocalFleetOptions {
  hosts: number;
  /** Use this server instead of starting one. */
  natsUrl?: string;
  /** The started nats-server's max_payload (default 8 MiB). */
  natsMaxPayloadBytes?: number;
  /** Folder for nats-server's store and the logs; a temporary one (removed on stop) when not given. */
  dataDir?: string;
  gatewayPort?: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  hostEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  onLine?: (service: string, line: string) => void;
  /** An API key the fleet's own requests (waiting for hosts) send, for a gateway started with FLURRY_API_KEYS. */
  apiKey?: string;
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
    private nats: RunningNatsServer | undefined,
    private readonly removeDataDir: boolean,
    private readonly opts: LocalFleetOptions,
  ) {}

  static async start(opts: LocalFleetOptions): Promise<LocalFleet> {
    // FLURRY_FLEET_LOG_LEVEL overrides every service's LOG_LEVEL (debug logs of a test's fleet, with FLURRY_KEEP_FLEET_DIRS).
    const level = process.env.FLURRY_FLEET_LOG_LEVEL;
    if (level) opts = { ...opts, env: { ...opts.env, LOG_LEVEL: level }, hostEnv: { ...opts.hostEnv, LOG_LEVEL: level }, gatewayEnv: { ...opts.gatewayEnv, LOG_LEVEL: level } };
    // FLURRY_KEEP_FLEET_DIRS=<folder>: every fleet's store and logs stay there after it stops (to read why a test failed).
    const keepIn = process.env.FLURRY_KEEP_FLEET_DIRS;
    const removeDataDir = !opts.dataDir && !keepIn;
    const dataDir = opts.dataDir ?? mkdtempSync(join(keepIn ?? tmpdir(), 'flurry-'));
    let nats: RunningNatsServer | undefined;
    const started: RunningService[] = [];
    try {
      if (!opts.natsUrl) nats = await startNatsServer({ dataDir: join(dataDir, 'nats'), maxPayloadBytes: opts.natsMaxPayloadBytes });
      const natsUrl = opts.natsUrl ?? nats!.url;
      const hosts = await Promise.all(
        Array.from({ length: opts.hosts }, (_, i) => LocalFleet.spawnHost(natsUrl, dataDir, opts, `host-${i + 1}`).then((h) => (started.push(h), h))),
      );
      const gateway = await startGateway({
        natsUrl,
        port: opts.gatewayPort ?? 0,
        env: { ...opts.env, ...opts.gatewayEnv },
        logFile: join(dataDir, 'logs', 'gateway.log'),
        onLine: opts.onLine && ((l) => opts.onLine!('gateway', l)),
      });
      started.push(gateway);
      const fleet = new LocalFleet(natsUrl, String(gateway.ready.url), dataDir, gateway, hosts, nats, removeDataDir, opts);
      await fleet.waitForHosts(opts.hosts);
      return fleet;
    } catch (err) {
      await Promise.all(started.map((s) => s.kill()));
      await nats?.stop();
      if (removeDataDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  private static spawnHost(natsUrl: string, dataDir: string, opts: LocalFleetOptions, hostId: string): Promise<RunningService> {
    return startHost({
      natsUrl,
      hostId,
      env: { ...opts.env, ...opts.hostEnv },
      logFile: join(dataDir, 'logs', `${hostId}.log`),
      onLine: opts.onLine && ((l) => opts.onLine!(hostId, l)),
    });
  }

  /** Starts one more host process (tests of failure and drain). */
  async addHost(hostId: string, env: Record<string, string> = {}): Promise<RunningService> {
    const h = await LocalFleet.spawnHost(this.natsUrl, this.dataDir, { ...this.opts, hostEnv: { ...this.opts.hostEnv, ...env } }, hostId);
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
    const h = await LocalFleet.spawnHost(this.natsUrl, this.dataDir, { ...this.opts, hostEnv: { ...this.opts.hostEnv, ...env } }, hostId);
    this.hosts[at] = h;
    return h;
  }

  /**
   * Replaces the gateway process on the same port: SIGKILL (`hard`, default)
   * or SIGTERM, then a new one. Tests of a coordinator that dies mid-job.
   */
  async restartGateway(opts: { hard?: boolean } = {}): Promise<RunningService> {
    const port = Number(new URL(this.url).port);
    if (opts.hard ?? true) await this.gateway.kill();
    else await this.gateway.stop(5000);
    this.gateway = await startGateway({
      natsUrl: this.natsUrl,
      port,
      env: { ...this.opts.env, ...this.opts.gatewayEnv },
      logFile: join(this.dataDir, 'logs', 'gateway.log'),
      onLine: this.opts.onLine && ((l) => this.opts.onLine!('gateway', l)),
    });
    this.url = String(this.gateway.ready.url);
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
    if (!nats) throw new Error('this fleet uses a nats-server it did not start');
    await nats.stop({ hard: opts.hard });
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    this.nats = await startNatsServer({ dataDir: join(this.dataDir, 'nats'), port: nats.port, maxPayloadBytes: this.opts.natsMaxPayloadBytes });
  }

  /** Waits until the gateway lists `count` live hosts. */
  async waitForHosts(count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const headers: Record<string, string> = this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
      const res = await fetch(`${this.url}/v1/hosts`, { headers }).catch(() => undefined);
      if (res?.ok) {
        const body = (await res.json()) as { hosts: unknown[] };
        if (body.hosts.length === count) return;
      }
      if (Date.now() > deadline) throw new Error(`the gateway did not see ${count} hosts within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await this.gateway.stop(5000);
    await Promise.all(this.hosts.map((h) => h.stop(10_000)));
    await this.nats?.stop();
    if (this.removeDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
