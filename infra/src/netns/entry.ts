/**
 * The way into a namespaced network from the machine's own namespace, where
 * the tests and benchmarks run: `reach(address, port)` gives a 127.0.0.1
 * port in this process that leads to that address on the network, so
 * `fetch(fleet.url)` and `connect(fleet.adminConnectOptions())` work as on
 * loopback.
 *
 * Why this way: this process cannot open a socket inside another namespace
 * (Node has no setns), and giving the machine's namespace an address on the
 * network (a veth end, a route) would put something on the machine's own
 * interfaces. So a forwarder process (forwarder.ts) runs inside a member
 * namespace of its own (the `client`, with its own address, so a client's
 * traffic crosses the bridge like any member's) and listens on Unix socket
 * paths, which every namespace sees; here a TCP listener on 127.0.0.1 pipes
 * each connection to one of those paths. A tool such as socat would do the
 * same but is not on every machine; Node is.
 *
 *   machine namespace              client namespace               gateway namespace
 *   127.0.0.1:<port> --unix socket--> forwarder --TCP over the bridge--> 10.77.0.3:8080
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../services.js';
import type { NetnsMember } from './network.js';
import { endingWithParent } from '../parent-death.js';

const FORWARDER = join(repoRoot, 'infra', 'dist', 'netns', 'forwarder.js');
const ANSWER_TIMEOUT_MS = 10_000;

type ForwarderMessage = { kind: 'ready' } | { kind: 'forwarding'; socket: string } | { kind: 'refused'; socket: string; message: string };

export class NetnsEntry {
  private readonly listeners = new Map<string, { server: Server; port: number; open: Set<Socket> }>();
  private readonly waiting = new Map<string, (m: ForwarderMessage) => void>();

  private constructor(
    private readonly forwarder: ChildProcess,
    private readonly socketDir: string,
    private readonly exited: Promise<void>,
  ) {
    forwarder.on('message', (m: ForwarderMessage) => {
      if (m?.kind === 'forwarding' || m?.kind === 'refused') this.waiting.get(m.socket)?.(m);
    });
  }

  /** Starts the forwarder inside `member`'s namespace. */
  static async start(member: NetnsMember): Promise<NetnsEntry> {
    const socketDir = mkdtempSync(join(tmpdir(), 'flurry-entry-'));
    const [cmd, ...args] = endingWithParent(member.wrapCommand([process.execPath, FORWARDER]));
    const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the forwarder in ${member.namespace} did not start within ${ANSWER_TIMEOUT_MS} ms: ${stderr.trim()}`)), ANSWER_TIMEOUT_MS);
        child.once('message', (m: ForwarderMessage) => { clearTimeout(timer); if (m?.kind === 'ready') resolve(); else reject(new Error(`the forwarder said ${JSON.stringify(m)} first`)); });
        void exited.then(() => { clearTimeout(timer); reject(new Error(`the forwarder in ${member.namespace} exited: ${stderr.trim()}`)); });
      });
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(socketDir, { recursive: true, force: true });
      throw err;
    }
    return new NetnsEntry(child, socketDir, exited);
  }

  /** A 127.0.0.1 port here that leads to `host:port` on the network (one per address, made on first use). */
  async reach(host: string, port: number): Promise<{ host: string; port: number }> {
    const key = `${host}:${port}`;
    const known = this.listeners.get(key);
    if (known) return { host: '127.0.0.1', port: known.port };
    const socket = join(this.socketDir, `${host}-${port}.sock`);
    const answer = await new Promise<ForwarderMessage>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(socket); reject(new Error(`the forwarder did not answer for ${key} within ${ANSWER_TIMEOUT_MS} ms`)); }, ANSWER_TIMEOUT_MS);
      this.waiting.set(socket, (m) => { clearTimeout(timer); this.waiting.delete(socket); resolve(m); });
      this.forwarder.send({ kind: 'forward', socket, host, port });
    });
    if (answer.kind === 'refused') throw new Error(`the forwarder cannot forward ${key}: ${answer.message}`);
    const open = new Set<Socket>();
    const server = createServer((local) => {
      const remote = connect(socket);
      open.add(local);
      local.once('close', () => open.delete(local));
      local.pipe(remote);
      remote.pipe(local);
      const close = () => { local.destroy(); remote.destroy(); };
      local.once('error', close).once('close', close);
      remote.once('error', close).once('close', close);
    });
    const localPort = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    this.listeners.set(key, { server, port: localPort, open });
    return { host: '127.0.0.1', port: localPort };
  }

  /** Closes every listener and its connections, stops the forwarder, removes the sockets' folder. */
  async close(): Promise<void> {
    for (const { server, open } of this.listeners.values()) {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.listeners.clear();
    if (this.forwarder.exitCode === null && this.forwarder.signalCode === null) {
      this.forwarder.kill('SIGTERM');
      const timer = setTimeout(() => this.forwarder.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.socketDir, { recursive: true, force: true });
  }
}
