/**
 * Recent replies of service instances, by request id (docs/services.md,
 * "Requests across a broker node's loss"): a request whose id is here is not
 * run again. While it runs, the same id waits for the same run; once done,
 * it gets the kept reply — a failed run's too (it may have changed the
 * instance's state before it failed). So a gateway that lost a request or its
 * reply with a nats node sends it again, and it happens once.
 *
 *   const table = new ReplyTable({ keepMs: 120_000, maxBytes: 16 << 20, maxReplies: 10_000 });
 *   const reply = await table.run(instanceId, req.requestId, () => runOnInstance(req));
 *   const { replies, through } = table.exportSince(instanceId, 512 * 1024, lastThrough);   // to the migration's target: those kept since the last step
 *   table.import(instanceId, step.replies);                         // on the target
 *
 * Kept replies are bounded for the whole host: each for `keepMs`, and the
 * least recently used go first beyond `maxBytes` or `maxReplies` (lru-cache).
 * Runs in progress are never evicted: they are bounded by the requests the
 * host is running.
 */
import { LRUCache } from 'lru-cache';
import { HANDED_OVER, type InvokeReply, type KeptReply } from '@flurry/core';

/** A run's answer: the reply, or HANDED_OVER when the request went to another host, which answers and keeps it. */
export type RunAnswer = InvokeReply | typeof HANDED_OVER;

export interface ReplyTableLimits {
  /** How long a reply is kept after its run ended. */
  keepMs: number;
  /** Most bytes of kept replies (bodies and headers) on the host. */
  maxBytes: number;
  /** Most kept replies on the host. */
  maxReplies: number;
}

interface Kept {
  instanceId: string;
  requestId: string;
  reply: InvokeReply;
  /** The order it was kept in, host-wide (exportSince). */
  seq: number;
  /** replyBytes(reply), and when it expires (performance.now()): read once, so that exportSince asks the cache nothing. */
  size: number;
  expiresAt: number;
  /** Evicted, expired or forgotten: skipped in its instance's list until that is compacted, never an answer. */
  gone?: boolean;
}

/**
 * A forgotten instance's replies leave the cache this many per turn of the event loop: a migration's source forgot
 * 1,000-3,000 at once at the migration's end, which held its main thread 8-20 ms while the target answered the
 * requests held across the pause and the source handed over the late ones.
 */
const FORGET_SLICE = 256;

/** An instance's kept replies in the order they were kept, and how many of them are gone. */
interface InstanceReplies {
  kept: Kept[];
  gone: number;
}

export class ReplyTable {
  private readonly running = new Map<string, Promise<RunAnswer>>();
  private readonly done: LRUCache<string, Kept>;
  /** Each instance's kept replies in the order kept: a migration's steps take those kept since the last step without walking the host's. */
  private readonly byInstance = new Map<string, InstanceReplies>();
  private seq = 0;

  constructor(private readonly limits: ReplyTableLimits) {
    this.done = new LRUCache<string, Kept>({
      ttl: limits.keepMs,
      max: limits.maxReplies,
      maxSize: limits.maxBytes,
      sizeCalculation: (k) => k.size,
      dispose: (k) => this.gone(k),
    });
  }

  private keep(key: string, k: Omit<Kept, 'seq' | 'size' | 'expiresAt'>, ttl?: number): void {
    const kept: Kept = { ...k, seq: ++this.seq, size: replyBytes(k.reply), expiresAt: performance.now() + (ttl ?? this.limits.keepMs) };
    this.done.set(key, kept, ttl === undefined ? undefined : { ttl });
    // Refused (alone above the byte budget): not listed either.
    if (this.done.peek(key) !== kept) return;
    let list = this.byInstance.get(k.instanceId);
    if (!list) this.byInstance.set(k.instanceId, (list = { kept: [], gone: 0 }));
    list.kept.push(kept);
  }

  /** A reply left the cache: its instance's list skips it, and is compacted once mostly gone. */
  private gone(k: Kept): void {
    if (k.gone) return;
    k.gone = true;
    const list = this.byInstance.get(k.instanceId);
    if (!list) return;
    if (++list.gone * 2 < list.kept.length) return;
    list.kept = list.kept.filter((x) => !x.gone);
    list.gone = 0;
    if (list.kept.length === 0) this.byInstance.delete(k.instanceId);
  }

  /**
   * The reply of request `requestId` on the instance: `work`'s, run once;
   * the run in progress or the kept reply when the id was seen before.
   * `work` answers failures as replies (it does not throw); a request it
   * handed to another host (HANDED_OVER) keeps nothing here.
   */
  run(instanceId: string, requestId: string, work: () => Promise<RunAnswer>): Promise<RunAnswer> {
    const key = keyOf(instanceId, requestId);
    const kept = this.done.get(key);
    if (kept && !kept.gone) return Promise.resolve(kept.reply);
    const running = this.running.get(key);
    if (running) return running;
    const run = work().then(
      (reply) => {
        this.running.delete(key);
        // A reply alone above the byte budget is not kept (the cache refuses it): its request would run again.
        if (reply !== HANDED_OVER) this.keep(key, { instanceId, requestId, reply });
        return reply;
      },
      (err: unknown) => {
        // Not a reply (a bug in `work`): nothing to keep; the next try runs.
        this.running.delete(key);
        throw err;
      },
    );
    this.running.set(key, run);
    return run;
  }

  /** Whether the request's reply is kept (it ran here). */
  kept(instanceId: string, requestId: string): boolean {
    return this.live(keyOf(instanceId, requestId));
  }

  /** Whether the request is running or its reply is kept. */
  has(instanceId: string, requestId: string): boolean {
    const key = keyOf(instanceId, requestId);
    return this.running.has(key) || this.live(key);
  }

  /** A reply is kept under `key` and not forgotten (forget deletes in slices). */
  private live(key: string): boolean {
    const k = this.done.peek(key);
    return k !== undefined && !k.gone;
  }

  /**
   * The instance's replies kept after `after` (a `through` this gave before; 0: all), newest kept first, as many
   * as fit `maxBytes`, and the `through` to give next time: a migration's steps send those kept since the last
   * step (nats-target.ts) without walking every reply of the host, in the pause neither.
   */
  exportSince(instanceId: string, maxBytes: number, after: number): { replies: KeptReply[]; through: number } {
    const replies: KeptReply[] = [];
    const list = this.byInstance.get(instanceId)?.kept ?? [];
    let bytes = 0;
    // From what each entry recorded when kept, not from the cache: a migration's first step walks every reply the
    // instance kept (950 in the bench: 8 ms of its main thread cold, there 11 ms, the first slice behind it).
    const now = performance.now();
    for (let i = list.length - 1; i >= 0 && list[i]!.seq > after; i--) {
      const k = list[i]!;
      const left = k.gone ? 0 : k.expiresAt - now;
      if (left <= 0 || bytes + k.size > maxBytes) continue;
      bytes += k.size;
      replies.push({ requestId: k.requestId, ageMs: Math.max(0, Math.round(this.limits.keepMs - left)), reply: k.reply });
    }
    return { replies, through: Math.max(after, list.at(-1)?.seq ?? 0) };
  }

  /** Keeps replies another host ran for the instance (a migration's), for what is left of their time; those known here win. */
  import(instanceId: string, replies: KeptReply[]): void {
    // Oldest first, so that the newest are the most recently used.
    for (const r of [...replies].reverse()) {
      const key = keyOf(instanceId, r.requestId);
      const left = this.limits.keepMs - r.ageMs;
      if (left <= 0 || this.running.has(key) || this.live(key)) continue;
      this.keep(key, { instanceId, requestId: r.requestId, reply: r.reply }, left);
    }
  }

  /**
   * Forgets the instance's kept replies (it was destroyed, or migrated away with them): none answers from now on;
   * they leave the cache FORGET_SLICE per turn of the event loop. A reply kept again for the same request meanwhile
   * (the instance came back) is another entry, and stays.
   */
  forget(instanceId: string): void {
    const kept = this.byInstance.get(instanceId)?.kept ?? [];
    this.byInstance.delete(instanceId);
    for (const k of kept) k.gone = true;
    const slice = (from: number): void => {
      const end = Math.min(kept.length, from + FORGET_SLICE);
      for (let i = from; i < end; i++) {
        const key = keyOf(instanceId, kept[i]!.requestId);
        if (this.done.peek(key) === kept[i]) this.done.delete(key);
      }
      if (end < kept.length) setImmediate(slice, end);
    };
    slice(0);
  }

  /** Kept replies and their bytes. */
  get size(): { replies: number; bytes: number } {
    return { replies: this.done.size, bytes: this.done.calculatedSize };
  }
}

function keyOf(instanceId: string, requestId: string): string {
  return `${instanceId}\0${requestId}`;
}

/** A kept reply's bytes in a migration step, about: its request id and its reply (replyBytes). */
export function keptReplyBytes(kept: KeptReply): number {
  return kept.requestId.length + replyBytes(kept.reply);
}

/** A reply's bytes, about (its encoding's a little less): its body, headers and error text, and room for the rest. */
export function replyBytes(reply: InvokeReply): number {
  if (!reply.ok) return 64 + reply.error.message.length;
  let bytes = 64 + reply.body.length;
  for (const [k, v] of reply.headers) bytes += 8 + k.length + v.length;
  return bytes;
}
