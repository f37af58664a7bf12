import { describe, expect, it } from 'vitest';
import type { KV, KvEntry } from '@nats-io/kv';
import { followKv } from './kv-watch.js';
import type { Logger } from './log.js';

const quiet = { warn: () => undefined } as unknown as Logger;

/** A KV whose every watch delivers the next batch of keys and then ends (or throws); it counts the watches opened. */
function endingKv(batches: { keys: string[]; end: 'finish' | 'throw' }[]): KV & { opened: number } {
  const kv = {
    opened: 0,
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
