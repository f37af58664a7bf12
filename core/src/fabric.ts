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

export interface Fabric {
  nc: NatsConnection;
  /** JetStream's management API (stream info: kv-keys.ts). */
  jsm: JetStreamManager;
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
}

export async function connectFabric(opts: FabricOptions): Promise<Fabric> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // Capturing a stack trace for every request costs ~40 µs, more than the rest of the client's work.
    noAsyncTraces: true,
  }).catch((err: unknown) => {
    throw new Error(`cannot reach nats-server at ${opts.servers.join(', ')}: ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  // Fail early with a clear message when the server lacks JetStream.
  const jsm = await jetstreamManager(nc).catch((err: unknown) => {
    throw new Error(`nats-server at ${opts.servers.join(', ')} has no JetStream (start it with -js): ${err instanceof Error ? err.message : err}`, { cause: err });
  });
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const hosts = await kvm.create(Buckets.hosts, { history: 1, ttl: opts.hostTtlSeconds * 1000 });
  const functions = await kvm.create(Buckets.functions, { history: 5 });
  const modules = await new Objm(js).create(ObjectStores.modules);
  return {
    nc,
    jsm,
    hosts,
    functions,
    modules,
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
