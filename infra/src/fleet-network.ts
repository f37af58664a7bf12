/**
 * Where a local fleet's processes run and how this process reaches them
 * (LocalFleet's `network` option):
 *
 *   loopback  every process on 127.0.0.1 (the default)
 *   netns     each nats-server node, the gateway and each worker host in a
 *             network namespace of its own, with its own address, so every
 *             byte between them crosses a real network stack (netns/network.ts);
 *             this process reaches the gateway and the nats nodes through the
 *             namespace entry (netns/entry.ts). docs/multi-host.md.
 */
import { NetnsEntry } from './netns/entry.js';
import { NetnsNetwork, type InterfaceBytes } from './netns/network.js';

export type FleetNetworkKind = 'loopback' | 'netns';

/** Where one process runs: the address it listens on, and how its command is run. */
export interface ProcessAddress {
  host: string;
  wrapCommand?: (argv: string[]) => string[];
}

export interface FleetNetwork {
  readonly kind: FleetNetworkKind;
  /** Where the process named `name` (`nats-1`, `gateway`, `host-2`) runs: made on the first ask, the same after (a restart runs where it ran). */
  place(name: string): Promise<ProcessAddress>;
  /** An address of this process's own that leads to `host:port`, where a fleet process listens. */
  reach(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Bytes a process's interface exchanged with the others; undefined on loopback (no interface of its own). */
  bytes(name: string): Promise<InterfaceBytes | undefined>;
  /** Removes what the network made (namespaces, forwarder); the fleet's processes have stopped by then. */
  close(): Promise<void>;
}

export async function startFleetNetwork(kind: FleetNetworkKind): Promise<FleetNetwork> {
  if (kind === 'loopback') return loopback;
  if (kind === 'netns') return NetnsFleetNetwork.start();
  throw new Error(`unknown fleet network ${JSON.stringify(kind)} (loopback or netns)`);
}

const loopback: FleetNetwork = {
  kind: 'loopback',
  place: async () => ({ host: '127.0.0.1' }),
  reach: async (host, port) => ({ host, port }),
  bytes: async () => undefined,
  close: async () => undefined,
};

class NetnsFleetNetwork implements FleetNetwork {
  readonly kind = 'netns' as const;
  /** One placement per name, made once even when asked twice at the same time. */
  private readonly placing = new Map<string, Promise<ProcessAddress>>();

  private constructor(private readonly network: NetnsNetwork, private readonly entry: NetnsEntry) {}

  static async start(): Promise<NetnsFleetNetwork> {
    const network = await NetnsNetwork.create();
    try {
      // The tests' and benchmarks' client: a member of its own, so their requests cross the bridge too.
      const entry = await NetnsEntry.start(await network.addMember('client'));
      return new NetnsFleetNetwork(network, entry);
    } catch (err) {
      await network.stop();
      throw err;
    }
  }

  place(name: string): Promise<ProcessAddress> {
    let p = this.placing.get(name);
    if (!p) {
      p = this.network.addMember(name).then((m) => ({ host: m.address, wrapCommand: m.wrapCommand }));
      this.placing.set(name, p);
    }
    return p;
  }

  reach(host: string, port: number): Promise<{ host: string; port: number }> {
    return this.entry.reach(host, port);
  }

  bytes(name: string): Promise<InterfaceBytes> {
    return this.network.bytes(name);
  }

  async close(): Promise<void> {
    await this.entry.close();
    await this.network.stop();
  }
}
