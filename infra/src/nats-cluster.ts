/**
 * A nats-server cluster started here: N nodes with routes between every
 * pair and JetStream on each, so that Flurry's stores can be replicated
 * (FLURRY_JS_REPLICAS). Used by the local fleet (`FLURRY_NATS_CLUSTER=3 npm
 * start`), the network-namespace launcher (each node in a namespace of its
 * own) and tests that kill a node.
 *
 *   const cluster = await startNatsCluster({ nodes: 3, dataDir, authorization: creds.authorizationConfig() });
 *   // NATS_URL=cluster.url (every node's URL, comma-separated)
 *   await cluster.stopNode(1, { hard: true });
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsNodeAddress } from './nats-config.js';
import { natsUrls } from './nats-config.js';
import { freePort } from './free-port.js';
import { startNatsServer, type RunningNatsServer } from './nats-server.js';

export interface NatsNodePlacement {
  /** Where the node listens (default 127.0.0.1). */
  host?: string;
  clientPort?: number;
  clusterPort?: number;
  /** Runs it through another command (a network namespace: `ip netns exec <ns> ...`). */
  wrapCommand?: (argv: string[]) => string[];
}

export interface NatsClusterOptions {
  /** How many nodes (3 tolerates the loss of one with replicas 3). */
  nodes: number;
  /** Each node's folder is `<dataDir>/nats-<i>` (config, JetStream store, log). */
  dataDir: string;
  /** Default `flurry`. */
  clusterName?: string;
  /** The fleet's users and permissions (nats-permissions.ts). */
  authorization?: string;
  maxPayloadBytes?: number;
  maxFileStoreBytes?: number;
  /** Address and command of node `index` (0-based); default: loopback on free ports. */
  placeNode?: (index: number) => NatsNodePlacement;
}

export interface RunningNatsCluster {
  /** Every node's client URL, comma-separated (what NATS_URL takes). */
  url: string;
  addresses: NatsNodeAddress[];
  /** The running node processes; a stopped node's entry is undefined until started again. */
  nodes: (RunningNatsServer | undefined)[];
  /** Stops node `index` (SIGKILL with `hard`). */
  stopNode(index: number, opts?: { hard?: boolean }): Promise<void>;
  /** Starts node `index` again on its address, with its store. */
  startNode(index: number): Promise<void>;
  /** New users and permissions on every running node. */
  reloadAuthorization(authorization: string): Promise<void>;
  stop(opts?: { hard?: boolean }): Promise<void>;
}

export async function startNatsCluster(opts: NatsClusterOptions): Promise<RunningNatsCluster> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 2) throw new Error(`a nats cluster needs at least 2 nodes, got ${opts.nodes}`);
  const placements = Array.from({ length: opts.nodes }, (_, i) => opts.placeNode?.(i) ?? {});
  const addresses: NatsNodeAddress[] = [];
  for (const [i, p] of placements.entries()) {
    addresses.push({ name: `nats-${i + 1}`, host: p.host ?? '127.0.0.1', clientPort: p.clientPort ?? (await freePort()), clusterPort: p.clusterPort ?? (await freePort()) });
  }
  const routeAuth = { user: 'route', password: randomBytes(24).toString('hex') };
  let authorization = opts.authorization;
  const start = (i: number) => startNatsServer({
    dataDir: join(opts.dataDir, `nats-${i + 1}`),
    name: addresses[i]!.name,
    host: addresses[i]!.host,
    port: addresses[i]!.clientPort,
    maxPayloadBytes: opts.maxPayloadBytes,
    maxFileStoreBytes: opts.maxFileStoreBytes,
    authorization,
    cluster: { name: opts.clusterName ?? 'flurry', port: addresses[i]!.clusterPort!, peers: addresses.filter((_, j) => j !== i), routeAuth },
    wrapCommand: placements[i]!.wrapCommand,
  });
  const nodes: (RunningNatsServer | undefined)[] = [];
  try {
    // One after another: each node's routes reach the nodes already listening at once. Started together, nats-server
    // 2.9 sometimes leaves a node that raced its routes out of the metadata group.
    for (const i of addresses.keys()) nodes.push(await start(i));
    const logs = addresses.map((_, i) => join(opts.dataDir, `nats-${i + 1}`, 'nats-server.log'));
    let behind = await waitForMetaLeader(logs, 15_000);
    // Such a node logs "Waiting for routing to be established..." and nothing more; started again, it joins (under
    // load it has taken two tries).
    for (let retry = 0; retry < 2 && behind.length > 0; retry++) {
      for (const i of behind) {
        await nodes[i]!.stop({ hard: true });
        nodes[i] = await start(i);
      }
      behind = await waitForMetaLeader(logs, 10_000);
    }
    if (behind.length > 0) throw new Error(`the nats cluster elected no JetStream metadata leader that nodes ${behind.map((i) => addresses[i]!.name).join(', ')} know of, started three times (see ${behind.map((i) => logs[i]).join(', ')})`);
  } catch (err) {
    await Promise.all(nodes.map((n) => n?.stop({ hard: true })));
    throw err;
  }
  const node = (i: number) => {
    if (i < 0 || i >= nodes.length) throw new Error(`this cluster has no node ${i}`);
    return nodes[i];
  };
  return {
    url: natsUrls(addresses),
    addresses,
    nodes,
    async stopNode(i, stopOpts) {
      await node(i)?.stop(stopOpts);
      nodes[i] = undefined;
    },
    async startNode(i) {
      if (node(i)) throw new Error(`nats node ${i + 1} is running`);
      nodes[i] = await start(i);
    },
    async reloadAuthorization(text) {
      authorization = text;
      await Promise.all(nodes.map((n) => n?.reloadAuthorization(text)));
    },
    async stop(stopOpts) {
      await Promise.all(nodes.map((n) => n?.stop(stopOpts)));
      nodes.fill(undefined);
    },
  };
}

/**
 * Until every node has seen JetStream's metadata leader elected (since it
 * last started): before that the JetStream API does not answer, and a
 * client's first request waits out its whole timeout. Resolves with the
 * nodes (indexes) that had not seen it within `timeoutMs`, none when all did.
 */
async function waitForMetaLeader(logFiles: string[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const elected = (f: string) => existsSync(f) && /metadata leader/.test(readFileSync(f, 'utf8').split('Starting nats-server').at(-1)!);
  for (;;) {
    const behind = logFiles.flatMap((f, i) => (elected(f) ? [] : [i]));
    if (behind.length === 0 || Date.now() > deadline) return behind;
    await new Promise((r) => setTimeout(r, 50));
  }
}
