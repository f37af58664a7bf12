/**
 * The fleet's NATS fabric: one connection per process, plus the JetStream
 * buckets and stores named in protocol.ts, created on first use with the
 * same settings by whoever gets there first.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { Buckets, ObjectStores } from './protocol.js';
import { BrokerLink } from './broker-link.js';
import type { NatsAuth } from './nats-auth.js';

export interface Fabric {
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
    throw new Error(`cannot reach nats-server at ${opts.servers.join(', ')}: ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  // Fail early with a clear message when the server lacks JetStream.
  const jsm = await jetstreamManager(nc).catch((err: unknown) => {
    throw new Error(`nats-server at ${opts.servers.join(', ')} has no JetStream (start it with -js): ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const hosts = await createShared(() => kvm.create(Buckets.hosts, { history: 1, ttl: opts.hostTtlSeconds * 1000 }));
  const functions = await createShared(() => kvm.create(Buckets.functions, { history: 5 }));
  const modules = await createShared(() => new Objm(js).create(ObjectStores.modules));
  return {
    nc,
    jsm,
    link: new BrokerLink(nc, { maxOutageMs: opts.maxOutageMs }),
    hosts,
    functions,
    modules,
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
