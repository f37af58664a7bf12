/**
 * The fleet's NATS fabric: one connection per process, and the one way to
 * open its JetStream stores: every bucket, object store and stream of the
 * table (store-table.ts) is opened here, created on first use with the same
 * settings, byte limit and replica count by whoever gets there first.
 *
 *   const jobs = await openKv(fabric, 'jobs');
 *   const lease = await openKv(fabric, 'jobLease', { ttlMs: 10_000 });
 *   await openStreamOf(fabric, 'results');
 *   const data = await openTenantData(fabric, tenant, quotaBytes);
 *
 * The broker may be one nats-server or a cluster (NATS_URL lists its nodes):
 * the client starts with a random node of the list, learns the others from
 * the cluster, and on losing its node reconnects to another (broker-link.ts).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Objm, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import { dataStoreName } from './protocol.js';
import { BrokerLink } from './broker-link.js';
import type { Logger } from './log.js';
import { ConfigError } from './config.js';
import { retryJetStream } from './jetstream-retry.js';
import { createBucket, createObjectStore, createStream, DEFAULT_STORE_MAX_BYTES, type StoreContext, type StoreLimits } from './store-limits.js';
import { FabricStores, type KvKey, type ObjectsKey, type StreamKey } from './store-table.js';
import { withoutUrlCredentials } from './redact.js';
import type { NatsAuth } from './nats-auth.js';

/**
 * Object stores hash every object they write and read (SHA-256). The client's default is SHA-256 in
 * JavaScript, 30-180 ms for a job's 860 KB reduce output on the shared machine, on the way to `done`;
 * node:crypto's takes about 1 ms. Process-wide, set before any store is opened.
 */
setSha256Backend('native');

export interface Fabric extends StoreContext {
  nc: NatsConnection;
  /** JetStream's management API (stream info: kv-keys.ts). */
  jsm: JetStreamManager;
  /** Whether the broker is reachable now (broker-link.ts). */
  link: BrokerLink;
  hosts: KV;
  functions: KV;
  modules: ObjectStore;
  close(): Promise<void>;
}

export interface FabricOptions {
  servers: string[];
  /** Connection name shown by the server (`flurry-host-…`). */
  name: string;
  /** Seconds after its last heartbeat that a host record expires. */
  hostTtlSeconds: number;
  /** Give up (link.onGiveUp) after the broker has been unreachable this long; 0 or absent: never. */
  maxOutageMs?: number;
  /** Byte limits of the stores (store-limits.ts); the defaults when absent. */
  storeLimits?: StoreLimits;
  /** Copies of every store created (FLURRY_JS_REPLICAS); 1 when absent. More than 1 needs a nats cluster. */
  replicas?: number;
  /** Where a limit that could not be applied is reported. */
  log?: Logger;
  /** Connect as this NATS user (a server with permissions); absent: anonymous. */
  auth?: NatsAuth;
}

export async function connectFabric(opts: FabricOptions): Promise<Fabric> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // Capturing a stack trace for every request costs ~40 µs, more than the rest of the client's work.
    noAsyncTraces: true,
    ...(opts.auth ? { user: opts.auth.user, pass: opts.auth.password, inboxPrefix: opts.auth.inboxPrefix } : {}),
  }).catch((err: unknown) => {
    throw new Error(`cannot reach nats-server at ${withoutUrlCredentials(opts.servers.join(', '))}: ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  const jsm = await jetStreamOf(nc, opts.servers).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });
  const replicas = opts.replicas ?? 1;
  // nats-server names its cluster in the connection's info; a single server names none.
  if (replicas > 1 && !nc.info?.cluster) {
    await nc.close();
    throw new ConfigError(`FLURRY_JS_REPLICAS=${replicas} needs a nats cluster of at least ${replicas} nodes, but the nats-server at ${withoutUrlCredentials(opts.servers.join(', '))} runs alone (set FLURRY_JS_REPLICAS=1)`);
  }
  const stores: StoreContext = {
    nc,
    jsm,
    storeLimits: opts.storeLimits ?? { ...DEFAULT_STORE_MAX_BYTES },
    replicas,
    warn: (fields, message) => opts.log?.warn(fields, message),
  };
  const hosts = await openKv(stores, 'hosts', { ttlMs: opts.hostTtlSeconds * 1000 });
  const functions = await openKv(stores, 'functions');
  const modules = await openObjects(stores, 'modules');
  return {
    ...stores,
    link: new BrokerLink(nc, { maxOutageMs: opts.maxOutageMs }),
    hosts,
    functions,
    modules,
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

/** Opens (or creates) a KV bucket of the table; a bucket whose entries expire needs their `ttlMs`. */
export async function openKv(ctx: StoreContext, key: KvKey, opts: { ttlMs?: number } = {}): Promise<KV> {
  const store = FabricStores[key];
  const ttlGiven = 'ttlGiven' in store;
  if (ttlGiven !== (opts.ttlMs !== undefined)) throw new Error(`bucket ${store.name}: ${ttlGiven ? 'its entries expire, give their ttlMs' : 'has no ttl to give'}`);
  return createBucket(ctx, store.name, ctx.storeLimits[store.name], { ...store.settings, ...(opts.ttlMs !== undefined ? { ttl: opts.ttlMs } : {}) });
}

/** Opens (or creates) an object store of the table. */
export function openObjects(ctx: StoreContext, key: ObjectsKey): Promise<ObjectStore> {
  const { name } = FabricStores[key];
  return createObjectStore(ctx, name, ctx.storeLimits[name]);
}

/** Creates a stream of the table unless it exists (its messages are read and written by subject). */
export function openStreamOf(ctx: StoreContext, key: StreamKey): Promise<void> {
  const { name, settings } = FabricStores[key];
  return createStream(ctx, { name, ...settings }, ctx.storeLimits[name]);
}

/** Opens (or creates) a tenant's store of uploaded data, its byte limit the tenant's data quota. */
export function openTenantData(ctx: StoreContext, tenant: string, maxBytes: number): Promise<ObjectStore> {
  return createObjectStore(ctx, dataStoreName(tenant), maxBytes);
}

/**
 * Opens an object store that exists, by the name a message gave (an init
 * data reference, a job's objects): a reader never creates one. The caller
 * checks that the requester may read that store (request-rights.ts).
 */
export function openExistingObjects(nc: NatsConnection, name: string): Promise<ObjectStore> {
  return new Objm(jetstream(nc)).open(name);
}

/** Per attempt: JetStream answers its account info in milliseconds once it serves; a request lost while a cluster forms is retried soon. */
const JETSTREAM_PROBE_TIMEOUT_MS = 2000;

/**
 * JetStream's management API, once it answers: a just-formed cluster may
 * lose the first requests, or not serve JetStream for a few seconds yet.
 * A server without JetStream fails the same way, so the final error names both.
 */
async function jetStreamOf(nc: NatsConnection, servers: string[]): Promise<JetStreamManager> {
  const where = `nats-server at ${withoutUrlCredentials(servers.join(', '))}`;
  try {
    await retryJetStream(where, () => jetstreamManager(nc, { timeout: JETSTREAM_PROBE_TIMEOUT_MS }));
  } catch (err) {
    throw new Error(`${where} has no JetStream (start it with -js), or its cluster did not serve JetStream in time: ${err instanceof Error ? err.message : err}`, { cause: err });
  }
  // The manager kept uses the client's usual timeout; the probe above proved the API answers.
  return jetstreamManager(nc, { checkAPI: false });
}
