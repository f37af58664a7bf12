/**
 * A KV watch that lasts as long as its process: when the watch's iterator
 * ends or throws (the consumer was deleted, the connection closed and came
 * back, a handler bug), it is opened again after a backoff. A handler that
 * throws is logged and the watch goes on with the next entry.
 *
 *   const watch = await followKv(fabric.hosts, {}, (e) => cache.apply(e), log, 'hosts', () => fabric.nc.isClosed());
 *   watch.stop();
 *
 * It stops for good once `closed()` says the connection is closed.
 *
 * A restarted watch with the same options: one that includes history or last
 * values delivers them again (handlers are idempotent caches), one with
 * `include: 'updates'` misses what changed while it was down.
 */
import type { KV, KvEntry, KvWatchOptions } from '@nats-io/kv';
import type { Logger } from './log.js';

export interface KvFollower {
  stop(): void;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

/** Opens the watch (throwing if that first open fails) and keeps it open until `stop()`. */
export async function followKv(
  kv: KV,
  opts: KvWatchOptions,
  onEntry: (e: KvEntry) => void | Promise<void>,
  log: Logger,
  what: string,
  closed: () => boolean,
): Promise<KvFollower> {
  let stopped = false;
  let current: Awaited<ReturnType<KV['watch']>> | undefined = await kv.watch(opts);
  let wake: (() => void) | undefined;
  const follower: KvFollower = {
    stop() {
      stopped = true;
      current?.stop();
      wake?.();
    },
  };
  void (async () => {
    for (let failures = 0; !stopped; ) {
      try {
        current ??= await kv.watch(opts);
        for await (const e of current) {
          if (stopped) break;
          failures = 0;
          try {
            await onEntry(e);
          } catch (err) {
            log.warn({ watch: what, key: e.key, err: (err as Error).message }, 'watch handler failed; following on');
          }
        }
      } catch (err) {
        log.warn({ watch: what, err: (err as Error).message }, 'watch failed');
      }
      current = undefined;
      if (stopped || closed()) return;
      const delayMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** failures++);
      log.warn({ watch: what, delayMs }, 'watch ended; opening it again');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, delayMs).unref();
      });
    }
  })();
  return follower;
}
