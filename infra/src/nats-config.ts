/**
 * nats-server's configuration file, for one node or for each node of a
 * cluster: the one place that writes it, used by the local fleet, the
 * network-namespace launcher and the deployment files (docs/deploy.md).
 *
 * A cluster node names itself (`server_name`, which JetStream's clustering
 * requires), listens for routes on its cluster port and solicits routes to
 * every other node; routes authenticate with a user of their own. Every node
 * runs JetStream, so streams can be replicated (FLURRY_JS_REPLICAS).
 *
 *   const text = natsServerConfig({ node: { name: 'nats-1', host: '10.0.0.1', clientPort: 4222, clusterPort: 6222 }, storeDir: '/var/lib/nats',
 *     cluster: { name: 'flurry', peers: [n2, n3], routeAuth: { user: 'route', password } }, authorization: creds.authorizationConfig() });
 */

export interface NatsNodeAddress {
  /** The node's `server_name`, unique in the cluster. */
  name: string;
  /** The address clients and the other nodes reach it at (it listens there). */
  host: string;
  clientPort: number;
  /** Port of the cluster routes (a cluster node only). */
  clusterPort?: number;
}

export interface NatsClusterSettings {
  /** The cluster's name, the same on every node. */
  name: string;
  /** The other nodes: this node solicits a route to each. */
  peers: NatsNodeAddress[];
  /** The user every route connects as. */
  routeAuth: { user: string; password: string };
}

export interface NatsServerConfigOptions {
  node: NatsNodeAddress;
  /** JetStream's store folder. */
  storeDir: string;
  /** Largest message the server accepts (default 8 MiB); fleet messages carry request bodies. */
  maxPayloadBytes?: number;
  /** The `authorization { ... }` block of the fleet's users (nats-permissions.ts); absent: anyone may connect. */
  authorization?: string;
  cluster?: NatsClusterSettings;
  /** JetStream's file storage limit (default: 75% of the free disk when the server starts). */
  maxFileStoreBytes?: number;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** The configuration file of one node. */
export function natsServerConfig(opts: NatsServerConfigOptions): string {
  const { node, cluster } = opts;
  if (cluster && node.clusterPort === undefined) throw new Error(`nats node ${node.name}: a cluster node needs a cluster port`);
  const lines = [
    `server_name: ${q(node.name)}`,
    `listen: ${hostPort(node.host, node.clientPort)}`,
    `max_payload: ${opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES}`,
    // A client that stops answering pings (a paused host) is dropped within about 6-9 s, and with it its
    // queue subscriptions: calls stop being routed to it (the default, 2 minutes, would keep routing).
    'ping_interval: "3s"',
    'ping_max: 2',
    'jetstream {',
    `  store_dir: ${q(opts.storeDir)}`,
    ...(opts.maxFileStoreBytes !== undefined ? [`  max_file_store: ${opts.maxFileStoreBytes}`] : []),
    '}',
  ];
  if (cluster) {
    const { user, password } = cluster.routeAuth;
    lines.push(
      'cluster {',
      `  name: ${q(cluster.name)}`,
      `  listen: ${hostPort(node.host, node.clusterPort!)}`,
      '  authorization {',
      `    user: ${q(user)}`,
      `    password: ${q(password)}`,
      '  }',
      '  routes: [',
      ...cluster.peers.map((p) => `    ${q(`nats-route://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostPort(p.host, peerClusterPort(p))}`)}`),
      '  ]',
      '}',
    );
  }
  lines.push(opts.authorization ?? '', '');
  return lines.join('\n');
}

/** The configuration of every node of a cluster, by node name: each node's peers are all the others. */
export function natsClusterConfigs(opts: Omit<NatsServerConfigOptions, 'node' | 'cluster' | 'storeDir'> & {
  nodes: NatsNodeAddress[];
  clusterName: string;
  routeAuth: NatsClusterSettings['routeAuth'];
  storeDirOf: (node: NatsNodeAddress) => string;
}): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of opts.nodes) {
    out.set(node.name, natsServerConfig({
      ...opts,
      node,
      storeDir: opts.storeDirOf(node),
      cluster: { name: opts.clusterName, peers: opts.nodes.filter((p) => p.name !== node.name), routeAuth: opts.routeAuth },
    }));
  }
  return out;
}

/** The client URLs of a set of nodes, as NATS_URL takes them (comma-separated). */
export function natsUrls(nodes: NatsNodeAddress[]): string {
  return nodes.map((n) => `nats://${hostPort(n.host, n.clientPort)}`).join(',');
}

function peerClusterPort(p: NatsNodeAddress): number {
  if (p.clusterPort === undefined) throw new Error(`nats node ${p.name}: a cluster peer needs a cluster port`);
  return p.clusterPort;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function q(s: string): string {
  return JSON.stringify(s);
}
