/**
 * A KV watch that lasts as long as its process: when the watch's iterator
 * ends or throws (the consumer was deleted, the connection closed and came
 * back, a handler bug), it is opened again after a backoff, from the
 * revision after the last one delivered (nothing missed, nothing twice). A
 * handler that throws is logged and the watch goes on with the next entry.
 *
 *   const watch = await followKv(fabric.hosts, {}, (e) => cache.apply(e), log, 'hosts', () => fabric.nc.isClosed());
 *   watch.stalledSince();   // undefined while it delivers
 *   watch.stop();
 *
 * It stops for good once `closed()` says the connection is closed. Given
 * the broker link, it is also opened again when the connection comes back
 * from an outage: a push consumer whose flow-control reply was lost with the
 * old connection would otherwise wait for its next heartbeat (30 s).
 *
 * On a nats cluster the watch's consumer lives on one node (ordered
 * consumers have a single replica), and when that node is lost the client
 * notices only after a minute of missed heartbeats. So the stream of a
 * replicated bucket is asked twice a second which of its nodes answer: when
 * one that answered at the watch's opening stops, the consumer may be gone
 * with it, and the watch is opened again at once. Until then (and while the
 * stream does not answer) the watch is `stalled`: like a broker outage, but
 * for this bucket only.
 */
import type { StreamInfo } from '@nats-io/jetstream';
import type { KV, KvEntry, KvWatchOptions } from '@nats-io/kv';
import type { BrokerLink } from './broker-link.js';
import type { Logger } from './log.js';

export interface KvFollower {
  stop(): void;
  /**
   * Since when the watch may not be delivering: it ended and is being opened
   * again, or its bucket's stream did not answer or changed peers.
   * Undefined while it delivers.
   */
  stalledSince(): number | undefined;
  /** When the watch delivers again after its last stall (0 before any). */
  resumedAt(): number;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** How often a replicated bucket's stream is asked which nodes hold it. */
const PEER_PROBE_MS = 500;
/** A probe unanswered this long counts as a stall from when it was sent (the stream is electing a leader). */
const SLOW_PROBE_MS = 750;
/** A node of the stream not heard from for this long is lost (its raft heartbeats come about every second). */
const PEER_LOST_MS = 1500;

/** Opens the watch (throwing if that first open fails) and keeps it open until `stop()`. */
export async function followKv(
  kv: KV,
  opts: KvWatchOptions,
  onEntry: (e: KvEntry) => void | Promise<void>,
  log: Logger,
  what: string,
  closed: () => boolean,
  link?: BrokerLink,
): Promise<KvFollower> {
  let stopped = false;
  let lastRevision: number | undefined;
  /** Since when no watch is open (it ended, failed, or was stopped to be opened again). */
  let closedSince: number | undefined;
  let reopenedAt = 0;
  const resumeOpts = (): KvWatchOptions => (lastRevision === undefined ? opts : { ...opts, resumeFromRevision: lastRevision + 1 });
  const peers = new StreamPeers(kv, log, what);
  await peers.start();
  let current: Awaited<ReturnType<KV['watch']>> | undefined = await kv.watch(opts);
  peers.opened();
  let wake: (() => void) | undefined;
  peers.onLost = () => current?.stop();
  const offLink = link?.onChange((up) => {
    if (up) current?.stop();
  });
  const follower: KvFollower = {
    stop() {
      stopped = true;
      offLink?.();
      peers.stop();
      current?.stop();
      wake?.();
    },
    stalledSince() {
      const since = [closedSince, peers.stalledSince()].filter((t) => t !== undefined);
      return since.length > 0 ? Math.min(...since) : undefined;
    },
    resumedAt: () => Math.max(reopenedAt, peers.resumedAt),
  };
  void (async () => {
    for (let failures = 0; !stopped; ) {
      try {
        if (!current) {
          current = await kv.watch(resumeOpts());
          peers.opened();
          closedSince = undefined;
          reopenedAt = Date.now();
        }
        for await (const e of current) {
          if (stopped) break;
          failures = 0;
          lastRevision = e.revision;
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
      closedSince ??= Date.now();
      if (stopped || closed()) return;
      const delayMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** failures++);
      log.warn({ watch: what, delayMs, fromRevision: lastRevision === undefined ? undefined : lastRevision + 1 }, 'watch ended; opening it again');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, delayMs).unref();
      });
    }
    peers.stop();
    offLink?.();
  })();
  return follower;
}

/**
 * The nodes holding a replicated bucket's stream, asked twice a second: the
 * watch's consumer lives on one of the nodes that held it when the watch was
 * opened, so when one of them stops answering (not heard from for
 * PEER_LOST_MS, or the stream has no leader) `onLost` is called.
 */
class StreamPeers {
  onLost?: () => void;
  resumedAt = 0;
  /** The nodes answering at the last probe; those when the watch was opened. */
  private alive = new Set<string>();
  private atOpen = new Set<string>();
  /** Set by a failed probe or a lost node until the watch is open again (or a probe finds every node). */
  private stalled?: number;
  private probeSentAt?: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Probes only a replicated stream: one with a single copy has no other node to go on from. */
  async start(): Promise<void> {
    const info = (await this.kv.status()).streamInfo;
    if (info.config.num_replicas <= 1) return;
    this.alive = answering(info, Date.now()).alive;
    this.timer = setInterval(() => void this.probe(), PEER_PROBE_MS);
    this.timer.unref();
  }

  /** The watch is open (again), with its consumer on one of the nodes answering now; a stall before ends. */
  opened(): void {
    if (!this.timer) return;
    this.atOpen = new Set(this.alive);
    if (this.stalled !== undefined) {
      this.stalled = undefined;
      this.resumedAt = Date.now();
    }
  }

  stalledSince(): number | undefined {
    if (this.stalled !== undefined) return this.stalled;
    const sent = this.probeSentAt;
    return sent !== undefined && Date.now() - sent > SLOW_PROBE_MS ? sent : undefined;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async probe(): Promise<void> {
    if (this.probeSentAt !== undefined) return;
    const sent = (this.probeSentAt = Date.now());
    try {
      const info = (await this.kv.status()).streamInfo;
      if (!info.cluster?.leader) {
        this.stalled ??= sent;
        return;
      }
      const { alive, lastHeard } = answering(info, sent);
      this.alive = alive;
      const lost = [...this.atOpen].filter((n) => !alive.has(n));
      if (lost.length > 0) {
        this.stalled = Math.min(this.stalled ?? sent, ...lost.map((n) => lastHeard.get(n) ?? sent));
        this.log.warn({ watch: this.what, lost, leader: info.cluster.leader }, 'a node of the bucket\'s stream stopped answering; opening the watch again (its consumer may be gone with the node)');
        this.atOpen = new Set(alive);
        this.onLost?.();
      } else if (this.stalled !== undefined) {
        // Every node answers: the consumer is where it was, and delivers what came meanwhile.
        this.stalled = undefined;
        this.resumedAt = Date.now();
      }
    } catch {
      this.stalled ??= sent;
    } finally {
      this.probeSentAt = undefined;
    }
  }
}

/** The stream's leader and the replicas heard from lately, and when each replica was last heard from. */
function answering(info: StreamInfo, now: number): { alive: Set<string>; lastHeard: Map<string, number> } {
  const alive = new Set<string>(info.cluster?.leader ? [info.cluster.leader] : []);
  const lastHeard = new Map<string, number>();
  for (const r of info.cluster?.replicas ?? []) {
    const heard = now - r.active / 1e6;
    lastHeard.set(r.name, heard);
    if (!r.offline && now - heard < PEER_LOST_MS) alive.add(r.name);
  }
  return { alive, lastHeard };
}
