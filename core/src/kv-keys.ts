/**
 * Listing the keys of a JetStream KV bucket without `kv.keys()`.
 *
 * `kv.keys()` (nats.js 3.x) reads a headers-only consumer until a message
 * says no more are pending, or until the consumer has been idle for its 5 s
 * heartbeat. On a bucket that changes all the time (host heartbeats every
 * second) and whose entries expire (a TTL), nats-server 2.9's pending count
 * can stay above zero and the consumer is never idle: the listing never ends
 * (nats-io/nats-server#3481). That hung `GET /v1/hosts` for a whole test's
 * time limit. The stream's own subject counts are one request (paged by the
 * client for large buckets) and always answer.
 *
 *   for (const key of await kvKeys(fabric.jsm, Buckets.hosts)) ...
 */
import type { JetStreamManager } from '@nats-io/jetstream';

/**
 * The keys under `filter` (a KV key pattern: `tenant.>`, `tenant.*`) of the
 * bucket, sorted. A key whose latest entry is a delete marker is still
 * listed: callers read the entry and skip it.
 */
export async function kvKeys(jsm: JetStreamManager, bucket: string, filter = '>'): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}${filter}` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
}
