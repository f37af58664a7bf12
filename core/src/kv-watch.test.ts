import { describe, expect, it } from 'vitest';
import type { KV, KvEntry, KvWatchOptions } from '@nats-io/kv';
import { followKv } from './kv-watch.js';
import type { Logger } from './log.js';

const quiet = { warn: () => undefined } as unknown as Logger;

/** A KV whose every watch delivers the next batch of keys and then ends (or throws); it counts the watches opened. */
function endingKv(batches: { keys: string[]; end: 'finish' | 'throw' }[]): KV & { opened: number } {
  const kv = {
    opened: 0,
    // A stream with one copy: no leader to follow.
    async status() {
      return { streamInfo: { config: { num_replicas: 1 } } };
    },
    async watch() {
      const batch = batches[kv.opened++] ?? { keys: [], end: 'finish' as const };
      let stopped = false;
      async function* entries(): AsyncGenerator<KvEntry> {
        for (const key of batch.keys) yield { key, operation: 'PUT', value: new Uint8Array(1) } as KvEntry;
        if (batch.end === 'throw') throw new Error('consumer deleted');
        // A finished batch that is not the last holds the watch open only until stopped.
        while (!stopped && kv.opened > batches.length) await new Promise((r) => setTimeout(r, 5));
      }
      return Object.assign(entries(), { stop: () => (stopped = true) });
    },
  };
  return kv as unknown as KV & { opened: number };
}

describe('followKv', () => {
  it('a watch that ends or throws - is opened again, and a failing handler does not end it', async () => {
    const kv = endingKv([{ keys: ['a', 'bad'], end: 'finish' }, { keys: ['b'], end: 'throw' }, { keys: ['c'], end: 'finish' }]);
    const seen: string[] = [];
    const watch = await followKv(kv, {}, (e) => {
      if (e.key === 'bad') throw new Error('handler bug');
      seen.push(e.key);
    }, quiet, 'test', () => false);
    await expect.poll(() => seen, { timeout: 5000 }).toEqual(['a', 'b', 'c']);
    watch.stop();
    const opened = kv.opened;
    await new Promise((r) => setTimeout(r, 300));
    expect(kv.opened).toBe(opened);
  });

  it('a closed connection - ends it for good', async () => {
    const kv = endingKv([{ keys: ['a'], end: 'finish' }]);
    const seen: string[] = [];
    await followKv(kv, {}, (e) => void seen.push(e.key), quiet, 'test', () => true);
    await expect.poll(() => seen).toEqual(['a']);
    await new Promise((r) => setTimeout(r, 300));
    expect(kv.opened).toBe(1);
  });
});

/**
 * A replicated bucket on nodes nats-1 (leader), nats-2 and nats-3; `cluster.lost`
 * is a replica not heard from for 5 s, `cluster.down` makes probes fail (as a
 * stream electing a leader does). Its watches deliver `revisions` from the one
 * asked for and then stay open.
 */
function replicatedKv(cluster: { lost?: string; down?: boolean }, revisions: number[]) {
  const opened: KvWatchOptions[] = [];
  const kv = {
    async status() {
      if (cluster.down) throw new Error('timeout');
      const replicas = ['nats-2', 'nats-3'].map((name) => ({ name, current: true, active: (name === cluster.lost ? 5000 : 100) * 1e6 }));
      return { streamInfo: { config: { num_replicas: 3 }, cluster: { leader: 'nats-1', replicas } } };
    },
    async watch(opts: KvWatchOptions) {
      opened.push(opts);
      let stopped = false;
      async function* entries(): AsyncGenerator<KvEntry> {
        for (const revision of revisions) if (revision >= (opts.resumeFromRevision ?? 0)) yield { key: `k${revision}`, revision, operation: 'PUT', value: new Uint8Array(1) } as KvEntry;
        while (!stopped) await new Promise((r) => setTimeout(r, 5));
      }
      return Object.assign(entries(), { stop: () => (stopped = true) });
    },
  };
  return { kv: kv as unknown as KV, opened };
}

describe('followKv - a replicated bucket', () => {
  it('a node of its stream stops answering - stalled since it was last heard from; the watch is opened again from the revision after the last one', async () => {
    const cluster: { lost?: string; down?: boolean } = {};
    const { kv, opened } = replicatedKv(cluster, [1, 2, 3]);
    const seen: number[] = [];
    const watch = await followKv(kv, {}, (e) => void seen.push(e.revision), quiet, 'test', () => false);
    await expect.poll(() => seen).toEqual([1, 2, 3]);
    expect(watch.stalledSince()).toBeUndefined();

    const lostAt = Date.now();
    cluster.lost = 'nats-3';
    await expect.poll(() => opened.length, { timeout: 3000 }).toBe(2);
    expect(opened[1]).toEqual({ resumeFromRevision: 4 });
    await expect.poll(() => watch.stalledSince()).toBeUndefined();
    expect(watch.resumedAt()).toBeGreaterThanOrEqual(lostAt);
    expect(seen).toEqual([1, 2, 3]);
    // The lost node stays lost: no more reopening.
    await new Promise((r) => setTimeout(r, 1200));
    expect(opened).toHaveLength(2);
    watch.stop();
  });

  it('probes that fail while every node answers - stalled from the first, then delivering again without a new watch', async () => {
    const cluster: { lost?: string; down?: boolean } = {};
    const { kv, opened } = replicatedKv(cluster, [1]);
    const watch = await followKv(kv, {}, () => undefined, quiet, 'test', () => false);
    const downAt = Date.now();
    cluster.down = true;
    await expect.poll(() => watch.stalledSince(), { timeout: 3000 }).toBeGreaterThanOrEqual(downAt);
    cluster.down = false;
    await expect.poll(() => watch.stalledSince(), { timeout: 3000 }).toBeUndefined();
    expect(watch.resumedAt()).toBeGreaterThan(downAt);
    expect(opened).toHaveLength(1);
    watch.stop();
  });
});
