/**
 * Finding and running nats-server: the local fleet and every integration
 * test start their own, on a free port with their own JetStream store, so
 * that they never share state with a broker already on the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { delimiter, join } from 'node:path';
import { freePort } from './free-port.js';
import { natsServerConfig, natsUrls, type NatsClusterSettings } from './nats-config.js';
import { endingWithParent } from './parent-death.js';

const FALLBACK_PATHS = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server'];

/** The nats-server binary: `NATS_SERVER_BIN`, then the PATH, then the usual Debian places. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN) return existsSync(env.NATS_SERVER_BIN) ? env.NATS_SERVER_BIN : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'nats-server');
    if (dir && existsSync(p)) return p;
  }
  return FALLBACK_PATHS.find((p) => existsSync(p));
}

export interface NatsServerOptions {
  /** Folder for the config file, the JetStream store and the log. */
  dataDir: string;
  port?: number;
  /** Address it listens on (default 127.0.0.1); a namespaced node's own address. */
  host?: string;
  /** Its server_name (default `nats-<port>`); unique within a cluster. */
  name?: string;
  /** Largest message the server accepts; fleet messages carry request bodies. */
  maxPayloadBytes?: number;
  /** Users and their permissions (nats-permissions.ts); absent: anyone may connect and do anything. */
  authorization?: string;
  /** This node's cluster port and its peers (nats-config.ts); absent: a single node. */
  cluster?: NatsClusterSettings & { port: number };
  /** JetStream's file storage limit. */
  maxFileStoreBytes?: number;
  /** Serve nats-server's monitoring endpoint (/varz: bytes and messages in and out) on a free port (RunningNatsServer.monitorUrl). */
  monitor?: boolean;
  /**
   * Runs the server through another command (`ip netns exec <ns> ...`): gets
   * nats-server's argv, returns the argv to spawn. Readiness then comes from
   * the server's log, not from a connection from here.
   */
  wrapCommand?: (argv: string[]) => string[];
}

export interface RunningNatsServer {
  url: string;
  port: number;
  /** Its server_name. */
  name: string;
  /** Its monitoring endpoint (`http://host:port`), when started with `monitor`. */
  monitorUrl?: string;
  process: ChildProcess;
  /** Replaces the users and permissions and has the running server reload them (connected clients stay). */
  reloadAuthorization(authorization: string): Promise<void>;
  /** SIGTERM (a clean shutdown), or SIGKILL with `hard`; resolves once it has exited. */
  stop(opts?: { hard?: boolean }): Promise<void>;
}

/** Starts nats-server with JetStream and waits until it accepts connections. */
export async function startNatsServer(opts: NatsServerOptions): Promise<RunningNatsServer> {
  const bin = findNatsServer();
  if (!bin) throw new Error('nats-server not found: install it (Debian: apt-get install nats-server) or set NATS_SERVER_BIN');
  const port = opts.port ?? (await freePort());
  const host = opts.host ?? '127.0.0.1';
  const name = opts.name ?? `nats-${port}`;
  const monitorPort = opts.monitor ? await freePort() : undefined;
  mkdirSync(opts.dataDir, { recursive: true });
  const storeDir = join(opts.dataDir, 'jetstream');
  const configFile = join(opts.dataDir, 'nats-server.conf');
  const logFile = join(opts.dataDir, 'nats-server.log');
  const writeConfig = (authorization: string | undefined) => writeFileSync(
    configFile,
    natsServerConfig({
      node: { name, host, clientPort: port, clusterPort: opts.cluster?.port },
      storeDir,
      maxPayloadBytes: opts.maxPayloadBytes,
      authorization,
      cluster: opts.cluster,
      maxFileStoreBytes: opts.maxFileStoreBytes,
      monitorPort,
    }),
    // It holds the users' passwords.
    { mode: 0o600 },
  );
  writeConfig(opts.authorization);
  chmodSync(configFile, 0o600);
  const readyBefore = countLogLines(logFile, 'Server is ready');
  const argv = [bin, '-c', configFile, '-l', logFile];
  const [cmd, ...args] = endingWithParent(opts.wrapCommand ? opts.wrapCommand(argv) : argv);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}: ${stderr.trim()}`);
    // A namespaced server cannot be reached from here: its log says when it listens.
    if (opts.wrapCommand ? countLogLines(logFile, 'Server is ready') > readyBefore : await canConnect(host, port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not listen on ${host}:${port} within 10 s: ${stderr.trim()} (see ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: natsUrls([{ name, host, clientPort: port }]),
    port,
    name,
    ...(monitorPort !== undefined && { monitorUrl: `http://${host.includes(':') ? `[${host}]` : host}:${monitorPort}` }),
    process: child,
    async reloadAuthorization(authorization: string) {
      const reloadsBefore = countLogLines(logFile, 'Reloaded server configuration');
      writeConfig(authorization);
      child.kill('SIGHUP');
      // The reload is done once the server logs it; a client of a new user connecting sooner would be refused.
      const until = Date.now() + 10_000;
      while (countLogLines(logFile, 'Reloaded server configuration') <= reloadsBefore) {
        if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode} while reloading its configuration`);
        if (Date.now() > until) throw new Error(`nats-server did not reload its configuration within 10 s (see ${logFile})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop(stopOpts = {}) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(stopOpts.hard ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function countLogLines(logFile: string, text: string): number {
  if (!existsSync(logFile)) return 0;
  return readFileSync(logFile, 'utf8').split(text).length - 1;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ port, host });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
