/**
 * The memory server of one snapshot, on the parent's host. Hosts with clones
 * ask it for chunks; it answers each request with a short ack and sends the
 * chunks on the snapshot's multicast subject, where every host with clones of
 * the snapshot receives them: one transmission serves every host that wants
 * the chunk (SnowFlock's multicast). Requests that arrive in the same turn of
 * the event loop are merged, so a chunk that several hosts fault on at once
 * is sent once, and a chunk is not sent again to a host that was already
 * listening when it went out: a host subscribes to the multicast subject
 * before its first request on the same connection, so every chunk sent after
 * the server saw that first request has reached it (unless NATS dropped it for
 * a slow consumer: then the host asks again with `force`).
 *
 * It records the order in which chunks were first asked for: the working set
 * of the first clones, which later forks push to every host up front.
 *
 * A request with a `unicastSubject` (a benchmark baseline) gets its chunks on
 * that subject instead, so hosts do not share transmissions.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '@flurry/core';
import {
  chunkCount, isZeroChunk, publishTo, serve, Subjects,
  type PageFetchReply, type PageFetchRequest, type PageMessage, type SnapshotDescriptor,
} from '@flurry/core';
import { checkUnicastSubject } from './request-rights.js';

/** Largest run of chunks in one message: 4 x 64 KiB moves fastest over NATS here. */
const MAX_RUN_CHUNKS = 4;
const WORKING_SET_GATHER_MS = 20;

export interface MemoryServerStats {
  requests: number;
  chunksSent: number;
  bytesSent: number;
  workingSetChunks: number;
}

export class MemoryServer {
  private readonly sub: Subscription;
  private readonly pending = new Set<number>();
  private readonly firstAsked: number[] = [];
  private readonly asked: Uint8Array;
  private readonly lastSent: Float64Array;
  /** When each host first asked: from then on it hears every multicast. */
  private readonly firstContact = new Map<string, number>();
  private flushScheduled = false;
  private pushingWorkingSet = false;
  readonly stats: MemoryServerStats = { requests: 0, chunksSent: 0, bytesSent: 0, workingSetChunks: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly descriptor: SnapshotDescriptor,
    /** Reads memory of the frozen snapshot; never touches a live or lazy memory. */
    private readonly read: (offset: number, length: number) => Uint8Array,
    private readonly log?: Logger,
  ) {
    this.asked = new Uint8Array(chunkCount(descriptor));
    this.lastSent = new Float64Array(this.asked.length).fill(-Infinity);
    this.sub = serve(nc, 'pageRequests', Subjects.pageRequests(descriptor.tenant, descriptor.snapshotId), (req) => this.onRequest(req), { log });
  }

  private closed = false;

  /** Chunks in the order the first clones asked for them. */
  workingSet(): number[] {
    return [...this.firstAsked];
  }

  private onRequest(req: PageFetchRequest): PageFetchReply {
    this.stats.requests++;
    const total = this.asked.length;
    const chunks = req.workingSet ? this.workingSet() : req.chunks.filter((c) => Number.isInteger(c) && c >= 0 && c < total);
    if (req.workingSet) this.pushingWorkingSet = true;
    if (!req.workingSet) {
      for (const c of chunks) {
        if (!this.asked[c]) {
          this.asked[c] = 1;
          this.firstAsked.push(c);
        }
      }
      this.stats.workingSetChunks = this.firstAsked.length;
    }
    if (req.unicastSubject) {
      // Baseline: the chunks go to this requester only.
      let messages: PageMessage[];
      try {
        checkUnicastSubject(this.descriptor, req.unicastSubject);
        messages = this.messagesFor(chunks);
      } catch (err) {
        return { ok: false, error: { code: 'not_found', message: (err as Error).message } };
      }
      for (const m of messages) publishTo(this.nc, 'unicastPages', req.unicastSubject, m);
      return { ok: true, sent: messages.length };
    }
    let listeningSince = this.firstContact.get(req.hostId);
    if (listeningSince === undefined || req.relisten) this.firstContact.set(req.hostId, (listeningSince = performance.now()));
    let added = 0;
    for (const c of chunks) if (req.force || this.lastSent[c] < listeningSince) (this.pending.add(c), added++);
    this.log?.debug({ snapshotId: this.descriptor.snapshotId, from: req.hostId, chunks: chunks.length, sending: added, force: req.force === true }, 'page request');
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A working-set push waits a moment for the other hosts of the same fork to start listening, so one push serves them all.
      if (req.workingSet) setTimeout(() => this.flush(), WORKING_SET_GATHER_MS);
      else setImmediate(() => this.flush());
    }
    return { ok: true, sent: chunks.length };
  }

  /** Sends every pending chunk once on the multicast subject. */
  private flush(): void {
    this.flushScheduled = false;
    // A flush scheduled just before the snapshot was released (a cancelled job) has nothing left to read.
    if (this.closed) return;
    const chunks = [...this.pending];
    this.pending.clear();
    const now = performance.now();
    for (const c of chunks) this.lastSent[c] = now;
    const subject = Subjects.pages(this.descriptor.tenant, this.descriptor.snapshotId);
    try {
      for (const m of this.messagesFor(chunks, this.pushingWorkingSet)) publishTo(this.nc, 'pages', subject, m);
    } catch (err) {
      // The snapshot went away between scheduling and sending; the clones' hosts see the server gone.
      this.log?.warn({ snapshotId: this.descriptor.snapshotId, err: (err as Error).message }, 'chunks could not be read for sending');
    } finally {
      this.pushingWorkingSet = false;
    }
  }

  /**
   * Groups chunks into runs of consecutive non-zero chunks, read from the
   * snapshot. A working set keeps its recorded order, so that the chunks a
   * clone needs first (those `on_restore` touches) go out first.
   */
  private messagesFor(chunks: number[], keepOrder = false): PageMessage[] {
    const d = this.descriptor;
    const distinct = [...new Set(chunks)].filter((c) => !isZeroChunk(d, c));
    const sorted = keepOrder ? distinct : distinct.sort((a, b) => a - b);
    const chunkBytes = d.pageSize * d.chunkPages;
    const out: PageMessage[] = [];
    for (let i = 0; i < sorted.length; ) {
      let j = i + 1;
      while (j < sorted.length && sorted[j] === sorted[j - 1] + 1 && j - i < MAX_RUN_CHUNKS) j++;
      const start = sorted[i] * chunkBytes;
      const end = Math.min(sorted[j - 1] * chunkBytes + chunkBytes, d.memoryBytes);
      const bytes = this.read(start, end - start);
      out.push({ chunk: sorted[i], bytes });
      this.stats.chunksSent += j - i;
      this.stats.bytesSent += bytes.length;
      i = j;
    }
    return out;
  }

  close(): void {
    this.closed = true;
    this.sub.unsubscribe();
  }
}
