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
 * A secret can be written into the file or left to the server's environment
 * (`{ env: 'NAME' }`, written `$NAME`: nats-server resolves it when it loads
 * the file, and `nats-server -t` fails naming a variable that is not set), so
 * that a deployment's configuration files hold no secret (docs/deploy.md).
 * A route URL carries the route password, so with an environment reference
 * each peer's whole route URL is a variable too (`routeUrlVariable`).
 *
 *   const text = natsServerConfig({ node: { name: 'nats-1', host: '10.0.0.1', clientPort: 4222, clusterPort: 6222 }, storeDir: '/var/lib/nats',
 *     cluster: { name: 'flurry', peers: [n2, n3], routeAuth: { user: 'route', password } }, authorization: creds.authorizationConfig() });
 */

/** A value nats-server takes from its environment when it loads the configuration. */
export interface EnvReference {
  env: string;
}

/** A secret written into the configuration as it is, or referenced from the server's environment. */
export type SecretValue = string | EnvReference;

/** A variable name nats-server resolves: letters, digits and _, not starting with a digit. */
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
  /** The user every route connects as; with an environment reference, route URLs are variables (`routeUrlVariable`). */
  routeAuth: { user: string; password: SecretValue };
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
  /** Port of the monitoring endpoint (`http_port`: /varz and the rest), on the node's address; absent: none. */
  monitorPort?: number;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
/**
 * A client that stops answering pings (a paused host) is dropped within about 6-9 s, and with it its
 * queue subscriptions: calls stop being routed to it (the default, 2 minutes, would keep routing).
 */
export const PING_INTERVAL = '3s';
export const PING_MAX = 2;

/** The configuration file of one node. */
export function natsServerConfig(opts: NatsServerConfigOptions): string {
  const { node, cluster } = opts;
  if (cluster && node.clusterPort === undefined) throw new Error(`nats node ${node.name}: a cluster node needs a cluster port`);
  const lines = [
    `server_name: ${q(node.name)}`,
    `listen: ${hostPort(node.host, node.clientPort)}`,
    `max_payload: ${opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES}`,
    `ping_interval: ${q(PING_INTERVAL)}`,
    `ping_max: ${PING_MAX}`,
    ...(opts.monitorPort !== undefined ? [`http: ${hostPort(node.host, opts.monitorPort)}`] : []),
    'jetstream {',
    `  store_dir: ${q(opts.storeDir)}`,
    ...(opts.maxFileStoreBytes !== undefined ? [`  max_file_store: ${opts.maxFileStoreBytes}`] : []),
    '}',
  ];
  if (cluster) {
    const { user, password } = cluster.routeAuth;
    const routeTo = (p: NatsNodeAddress) => typeof password === 'string' ? q(routeUrl(p, user, password)) : secret({ env: routeUrlVariable(p) });
    lines.push(
      'cluster {',
      `  name: ${q(cluster.name)}`,
      `  listen: ${hostPort(node.host, node.clusterPort!)}`,
      '  authorization {',
      `    user: ${q(user)}`,
      `    password: ${secret(password)}`,
      '  }',
      '  routes: [',
      ...cluster.peers.map((p) => `    ${routeTo(p)}`),
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

/** The URL a node solicits a route to `peer` with, credentials included. */
export function routeUrl(peer: NatsNodeAddress, user: string, password: string): string {
  return `nats-route://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostPort(peer.host, peerClusterPort(peer))}`;
}

/** The variable holding the route URL to `peer` when the route password is an environment reference. */
export function routeUrlVariable(peer: NatsNodeAddress): string {
  return `FLURRY_NATS_ROUTE_URL_${envToken(peer.name)}`;
}

/** A name as part of a variable name: upper case, every other character than a letter or digit as _. */
export function envToken(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** A secret as the configuration writes it: quoted, or `$NAME`. */
export function secret(value: SecretValue): string {
  if (typeof value === 'string') return q(value);
  if (!ENV_NAME_PATTERN.test(value.env)) throw new Error(`"${value.env}" is not a variable name nats-server resolves`);
  return `$${value.env}`;
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
