/**
 * The fleet's NATS fabric: one connection per process, plus the JetStream
 * buckets and stores named in protocol.ts, created on first use with the
 * same settings by whoever gets there first.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { Buckets, ObjectStores } from './protocol.js';
import { BrokerLink } from './broker-link.js';
import type { Logger } from './log.js';
import { DEFAULT_STORE_MAX_BYTES, openBucket, openObjectStore, type StoreContext, type StoreLimits } from './store-limits.js';
import { withoutUrlCredentials } from './redact.js';
import type { NatsAuth } from './nats-auth.js';

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
  /** Where a limit that could not be applied is reported. */
  log?: Logger;
  /** Connect as this NATS user (a server with permissions); absent: anonymous. */
  auth?: NatsAuth;
}

/**
 * Creates (or opens) a bucket or stream that several processes create at
 * start. The clients look the stream up and add it when it is missing; two
 * processes doing that at once make one of them fail ("subjects overlap with
 * an existing stream", "stream name already in use"): it tries again, and
 * then finds the stream the other made.
 *
 *   const jobs = await createShared(() => kvm.create(JobBuckets.jobs, { history: 1 }));
 */
export async function createShared<T>(create: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      const raced = /subjects overlap|already in use/i.test((err as Error).message ?? '');
      if (!raced || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80 * attempt));
    }
  }
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
  // Fail early with a clear message when the server lacks JetStream.
  const jsm = await jetstreamManager(nc).catch((err: unknown) => {
    throw new Error(`nats-server at ${withoutUrlCredentials(opts.servers.join(', '))} has no JetStream (start it with -js): ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  const stores: StoreContext = {
    nc,
    jsm,
    storeLimits: opts.storeLimits ?? { ...DEFAULT_STORE_MAX_BYTES },
    warn: (fields, message) => opts.log?.warn(fields, message),
  };
  const hosts = await openBucket(stores, Buckets.hosts, { history: 1, ttl: opts.hostTtlSeconds * 1000 });
  const functions = await openBucket(stores, Buckets.functions, { history: 5 });
  const modules = await openObjectStore(stores, ObjectStores.modules, stores.storeLimits[ObjectStores.modules]);
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
