/**
 * A private network of Linux network namespaces: every member (a nats-server
 * node, the gateway, a worker host, the client) gets a namespace of its own
 * with its own address, so that every byte between two members crosses a
 * real network stack (veth, bridge, TCP) instead of loopback.
 *
 *   flurry-<pid>-<n>-br        bridge `br0`; one port `v<i>` per member
 *   flurry-<pid>-<n>-<member>  `lo` up; `eth0` 10.77.0.<i+2>/24, the other end of `v<i>`
 *
 * Nothing is created in the machine's own namespace: each veth pair is made
 * inside the member's namespace with its peer moved straight into the bridge
 * namespace, and no member has a route out, so traffic stays among them.
 * Names carry the creating process's pid; `create` first removes what an
 * earlier run whose process is gone left behind (a killed test), and `stop`
 * removes everything this network made.
 *
 *   const net = await NetnsNetwork.create();
 *   const node = await net.addMember('nats-1');   // node.address, node.wrapCommand(argv)
 *   ...
 *   await net.stop();
 */
import { findIp, ip, listNamespaces, namespacePids } from './ip.js';

export interface NetnsMember {
  /** The launcher's name for it (`nats-1`, `gateway`, `host-2`, `client`). */
  name: string;
  /** Its network namespace (`ip netns exec <namespace> ...`). */
  namespace: string;
  /** Its own IPv4 address on the network. */
  address: string;
  /** argv -> the argv that runs it inside this member's namespace (`ip netns exec` execs in place: same pid, same file descriptors). */
  wrapCommand(argv: string[]): string[];
}

/** Bytes an interface received and sent, as the kernel counts them (Ethernet frames, headers included). */
export interface InterfaceBytes {
  rxBytes: number;
  txBytes: number;
}

const SUBNET = '10.77.0';
const PREFIX_LENGTH = 24;
/** .0 is the network, .1 is left unused (no gateway: nothing routes out), .255 is broadcast. */
const MAX_MEMBERS = 253;
const MEMBER_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** `flurry-<pid>-<n>-...`: the pid of the process that made it. */
const OWNED_NAME = /^flurry-(\d+)-/;

let networksMade = 0;

export class NetnsNetwork {
  private readonly members = new Map<string, NetnsMember>();
  private stopped = false;

  private constructor(
    /** Every namespace name of this network starts with it. */
    readonly prefix: string,
    private readonly bridgeNamespace: string,
  ) {}

  /** Removes a dead run's leftovers, then makes the bridge namespace. */
  static async create(): Promise<NetnsNetwork> {
    await removeStaleNamespaces();
    const prefix = `flurry-${process.pid}-${++networksMade}`;
    const bridge = `${prefix}-br`;
    await ip(['netns', 'add', bridge]);
    try {
      // STP off (the default) and no forward delay: a port forwards as soon as it is up.
      await ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0']);
      await ip(['-n', bridge, 'link', 'set', 'br0', 'up']);
    } catch (err) {
      await ip(['netns', 'del', bridge]).catch(() => undefined);
      throw err;
    }
    return new NetnsNetwork(prefix, bridge);
  }

  /** A new member: its namespace, its veth pair onto the bridge, its address. */
  async addMember(name: string): Promise<NetnsMember> {
    if (this.stopped) throw new Error('this network has been stopped');
    if (!MEMBER_NAME.test(name)) throw new Error(`a network member's name is 1-32 of a-z, 0-9 and '-', got ${JSON.stringify(name)}`);
    if (this.members.has(name)) throw new Error(`the network has a member ${name} already`);
    const index = this.members.size;
    if (index >= MAX_MEMBERS) throw new Error(`a network holds at most ${MAX_MEMBERS} members`);
    const namespace = `${this.prefix}-${name}`;
    const port = `v${index}`;
    const address = `${SUBNET}.${index + 2}`;
    const ipBin = findIp()!;
    const member: NetnsMember = { name, namespace, address, wrapCommand: (argv) => [ipBin, 'netns', 'exec', namespace, ...argv] };
    // Listed before it exists, so that stop() removes a half-made member too.
    this.members.set(name, member);
    await ip(['netns', 'add', namespace]);
    await ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
    await ip(['-n', namespace, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', this.bridgeNamespace]);
    await ip(['-n', this.bridgeNamespace, 'link', 'set', port, 'master', 'br0', 'up']);
    await ip(['-n', namespace, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', 'eth0']);
    await ip(['-n', namespace, 'link', 'set', 'eth0', 'up']);
    return member;
  }

  member(name: string): NetnsMember | undefined {
    return this.members.get(name);
  }

  /** The counters of a member's `eth0`: everything it exchanged with the other members. */
  async bytes(name: string): Promise<InterfaceBytes> {
    const m = this.members.get(name);
    if (!m) throw new Error(`the network has no member ${name}`);
    const [link] = JSON.parse(await ip(['-n', m.namespace, '-s', '-j', 'link', 'show', 'eth0'])) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[];
    return { rxBytes: link!.stats64.rx.bytes, txBytes: link!.stats64.tx.bytes };
  }

  /**
   * Removes every namespace of this network (its veth pairs go with them).
   * A process still running in one is SIGKILLed first: the launcher stops
   * its processes before, so this only catches one that would not stop.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const names = [...[...this.members.values()].map((m) => m.namespace), this.bridgeNamespace];
    const failures: string[] = [];
    for (const ns of names) await removeNamespace(ns).catch((err: Error) => failures.push(err.message));
    if (failures.length) throw new Error(`removing the network's namespaces: ${failures.join('; ')}`);
  }
}

/**
 * Removes the namespaces of runs whose process is gone (a test killed before
 * it could stop its network), and SIGKILLs what still runs in them: those
 * are that run's own nats-servers, hosts and gateway, orphaned.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const owner = OWNED_NAME.exec(ns)?.[1];
    return owner !== undefined && !processAlive(Number(owner));
  });
  for (const ns of stale) await removeNamespace(ns);
  return stale;
}

async function removeNamespace(namespace: string): Promise<void> {
  if (!(await listNamespaces()).includes(namespace)) return;
  for (const pid of await namespacePids(namespace)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  await ip(['netns', 'del', namespace]);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
