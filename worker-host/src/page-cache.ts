/**
 * A host's cache of one remote snapshot's memory, shared by all its clones of
 * that snapshot. It listens once to the snapshot's multicast subject and keeps
 * every chunk that arrives, whoever asked for it; it asks the memory server
 * for the chunks its clones fault on and nobody has sent yet.
 *
 * Two forms behind one interface (chunk-store.ts):
 *   native    chunks go into the userfaultfd pager's C page store; the
 *             handler thread serves clone faults from it without JavaScript;
 *             misses come here through the store's miss handler.
 *   portable  chunks go into a SharedArrayBuffer; clones start only once it
 *             holds every non-zero chunk (eager fill), then copy it.
 *
 * Every chunk is checked against the descriptor's hash before anything can
 * read it. A chunk that fails, or a memory server that stops answering, fails
 * the cache: its clones are stopped with that error, never run on a wrong page.
 */
import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  call, chunkCount, chunkRange, FlurryError, isZeroChunk, listen, Subjects, verifyChunk,
  type BrokerLink, type Logger, type PageFetchReply, type PageFetchRequest, type PageMessage, type SnapshotDescriptor,
} from '@flurry/core';
import type { NativePager } from './native/pager.js';
import { nativeChunkStore, sharedChunkStore, type CacheSource, type ChunkStore } from './chunk-store.js';

export interface PageCacheStats {
  /** Chunks this host asked the memory server for. */
  chunksRequested: number;
  /** Chunks that arrived after this host asked for them. */
  chunksUnicast: number;
  /** Chunks that arrived because another host asked (or a prefetch pushed them). */
  chunksMulticast: number;
  bytesReceived: number;
  /** Chunks received again after this host already had them. */
  duplicateChunks: number;
}

export interface PageCacheOptions {
  nc: NatsConnection;
  /** The broker connection: while it is away, fetches wait for it instead of spending their attempts. */
  link?: BrokerLink;
  /** Where asking again is told (debug). */
  log?: Logger;
  hostId: string;
  descriptor: SnapshotDescriptor;
  /** The native pager, or undefined for the portable form. */
  pager?: NativePager;
  /** Benchmark baseline: chunks come in replies to this host only, not by multicast. */
  unicast?: boolean;
  /** How long a page request waits for its answer (the subject table's default when not given). */
  requestTimeoutMs?: number;
  /** Chunks per fetch request (a full eager fill asks in batches of this many). */
  batchChunks?: number;
}

const RETRIES = 3;
/**
 * Read-ahead: a miss on the chunk right after one already fetched (a scan)
 * also asks for this many chunks after it. A random miss asks for itself only,
 * so random access moves no extra bytes.
 */
const READ_AHEAD_CHUNKS = 8;
/** Requested chunks are asked for again when none of them has arrived for this long (the stream stalled or lost them). */
const REDELIVER_MS = 1000;
/** A chunk asked for this long ago is asked for again even while others arrive (it was lost while the stream flowed). */
const STARVED_MS = 10_000;
/**
 * A fill (fillAll) keeps at most this many chunks asked for and not here yet
 * (16 MiB of 64 KiB chunks) and asks for the next as they arrive. Asked for
 * all at once, the eager baseline's clones (each fills a whole snapshot of
 * its own) had the parent's host read and publish every snapshot in one go:
 * its event loop stalled for seconds (its heartbeats failed for 20 s), the
 * clone hosts saw no chunk for a second and asked for all of them again, and
 * the resends (6.6 GiB for four 256 MiB snapshots) ended in "chunks never
 * arrived" (docs/benchmarks.md, "Local forks: instances given back").
 */
const FILL_WINDOW_CHUNKS = 256;
/** Fetches wait this long at most for the broker to come back before they count as failed. */
const MAX_OUTAGE_WAIT_MS = 60_000;

export class PageCache {
  readonly stats: PageCacheStats = { chunksRequested: 0, chunksUnicast: 0, chunksMulticast: 0, bytesReceived: 0, duplicateChunks: 0 };
  /** Bytes of the chunks it holds (what it commits of the host's memory). */
  heldBytes = 0;
  private readonly have: Uint8Array;
  private readonly requested: Uint8Array;
  /** When each chunk was last asked for (performance.now()). */
  private readonly askedAt: Float64Array;
  private readonly wanted = new Set<number>();
  private flushScheduled = false;
  private missing: number;
  private readonly sub: Subscription;
  /** Where chunks arrive: the snapshot's multicast subject, or this cache's own (unicast baseline). */
  private readonly unicastSubject?: string;
  private readonly store: ChunkStore;
  /** Stops listening for the broker's outages. */
  private readonly unwatchLink?: () => void;
  private failure?: FlurryError;
  private readonly failureListeners: ((err: FlurryError) => void)[] = [];
  private readonly completeWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private closed = false;
  /** When a chunk this host asked for last arrived, or it last asked (the delivery watchdog's clock). */
  private lastProgress = performance.now();
  /** Stalls of the delivery in a row, and the watchdog's timer while chunks are outstanding. */
  private stalls = 0;
  private watchdog?: NodeJS.Timeout;
  /** While filling: the chunks the fill asked for, how many of them are not here yet, and the next to consider. */
  private fill?: { asked: Uint8Array; inFlight: number; next: number };

  constructor(private readonly opts: PageCacheOptions) {
    const d = opts.descriptor;
    const chunks = chunkCount(d);
    this.have = new Uint8Array(chunks);
    this.requested = new Uint8Array(chunks);
    this.askedAt = new Float64Array(chunks);
    this.missing = 0;
    for (let c = 0; c < chunks; c++) {
      if (isZeroChunk(d, c)) this.have[c] = 1;
      else this.missing++;
    }
    this.store = opts.pager
      ? nativeChunkStore(opts.pager, d, {
        miss: (chunk) => this.miss(chunk),
        // With the handler thread dead no fault is served: clones waiting on a page would sleep forever.
        handlerDied: (reason) => this.fail(new FlurryError('internal', `the pager's fault handler thread died (${reason}); clones paging lazily on this host are stopped`)),
      })
      : sharedChunkStore(d);
    if (opts.unicast) this.unicastSubject = createInbox(Subjects.unicastPages(d.tenant, d.snapshotId, opts.hostId));
    // A message that is no page message is dropped (and counted); the chunks it does not bring are asked for again.
    this.sub = this.unicastSubject
      ? listen(opts.nc, 'unicastPages', this.unicastSubject, (m) => this.accept(m), { log: opts.log })
      : listen(opts.nc, 'pages', Subjects.pages(d.tenant, d.snapshotId), (m) => this.accept(m), { log: opts.log });
    // Tell the memory server at once that this host listens (the subscription is on the same
    // connection, so it is in place first): every chunk it sends from now on reaches this host,
    // and it need not send them again when this host's own requests come.
    if (!opts.unicast) {
      void this.hello();
      // Multicasts sent while this host's connection was down never reached it: it listens afresh.
      this.unwatchLink = opts.link?.onChange((up) => {
        if (up) void this.hello(true);
      });
    }
  }

  private async hello(relisten = false): Promise<void> {
    const d = this.opts.descriptor;
    const req: PageFetchRequest = { hostId: this.opts.hostId, chunks: [], ...(relisten ? { relisten: true } : {}) };
    await call(this.opts.nc, 'pageRequests', Subjects.pageRequests(d.tenant, d.snapshotId), req, { timeoutMs: this.opts.requestTimeoutMs }).catch(() => undefined);
  }

  /** What a clone's memory is made from. */
  source(): CacheSource {
    return this.store.source;
  }

  get complete(): boolean {
    return this.missing === 0;
  }

  /** Why the cache failed, if it did. */
  get failedWith(): FlurryError | undefined {
    return this.failure;
  }

  /** Throws why the cache failed, if it did. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Registers a listener for the cache failing (corrupt chunk, memory server gone). */
  onFailure(listener: (err: FlurryError) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /**
   * Asks for every chunk not yet here, FILL_WINDOW_CHUNKS at a time, and resolves when all have arrived (the
   * portable pager's fill, the eager baseline's).
   */
  fillAll(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.complete) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.completeWaiters.push({ resolve, reject }));
    this.fill ??= { asked: new Uint8Array(this.have.length), inFlight: 0, next: 0 };
    this.fillMore();
    return done;
  }

  /** Asks for the next chunks of the fill while fewer than FILL_WINDOW_CHUNKS it asked for are on their way. */
  private fillMore(): void {
    const f = this.fill;
    if (!f) return;
    while (f.inFlight < FILL_WINDOW_CHUNKS && f.next < this.have.length) {
      const c = f.next++;
      if (this.have[c] || this.requested[c]) continue;
      this.want(c);
      f.asked[c] = 1;
      f.inFlight++;
    }
  }

  /**
   * Asks at once for the chunks the snapshot's i32 globals point into: a
   * runtime's stack pointer and allocator state, which every clone touches
   * in its first microseconds. Fetched now, they are here before the first
   * fault instead of one round trip after it.
   */
  prefetchPointedTo(): void {
    const d = this.opts.descriptor;
    const chunkBytes = d.pageSize * d.chunkPages;
    for (const g of d.globals) {
      if (g.type !== 'i32' || typeof g.value !== 'number') continue;
      const addr = g.value >>> 0;
      if (addr === 0 || addr >= d.memoryBytes) continue;
      // The chunk itself and the one below it: stacks grow down, so a stack pointer's frame is just below.
      for (const c of [Math.floor(addr / chunkBytes), Math.floor(addr / chunkBytes) - 1]) if (c >= 0 && !isZeroChunk(d, c)) this.want(c);
    }
  }

  /** Asks the memory server to multicast the working set its first clones recorded. */
  prefetchWorkingSet(): void {
    if (this.opts.unicast) return;
    const req: PageFetchRequest = { hostId: this.opts.hostId, chunks: [], workingSet: true };
    // A prefetch that fails costs only its speed-up: faults still fetch on demand.
    call(this.opts.nc, 'pageRequests', Subjects.pageRequests(this.opts.descriptor.tenant, this.opts.descriptor.snapshotId), req, { timeoutMs: this.opts.requestTimeoutMs }).catch(() => undefined);
  }

  /** A clone faulted on a chunk not here. */
  private miss(chunk: number): void {
    const scanning = chunk > 0 && (this.have[chunk - 1] || this.requested[chunk - 1]) && !isZeroChunk(this.opts.descriptor, chunk - 1);
    this.want(chunk);
    if (!scanning) return;
    for (let c = chunk + 1; c <= chunk + READ_AHEAD_CHUNKS && c < this.have.length; c++) this.want(c);
  }

  private want(chunk: number): void {
    if (this.have[chunk] || this.requested[chunk] || this.closed || this.failure) return;
    this.requested[chunk] = 1;
    this.wanted.add(chunk);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const chunks = [...this.wanted];
    this.wanted.clear();
    const batch = this.opts.batchChunks ?? 256;
    for (let i = 0; i < chunks.length; i += batch) void this.fetch(chunks.slice(i, i + batch), 0);
  }

  /** `again`: these chunks were asked for before (sent during an outage, say): the server sends them even if it sent them lately. */
  private async fetch(chunks: number[], attempt: number, again = false): Promise<void> {
    const d = this.opts.descriptor;
    this.stats.chunksRequested += attempt === 0 && !again ? chunks.length : 0;
    const now = performance.now();
    for (const c of chunks) this.askedAt[c] = now;
    this.watchDelivery();
    // Asking again, this host may have missed multicasts (cut off, paused, a slow consumer): it listens afresh.
    const req: PageFetchRequest = { hostId: this.opts.hostId, chunks, unicastSubject: this.unicastSubject, force: attempt > 0 || again, ...(again ? { relisten: true } : {}) };
    const outagesBefore = this.opts.link?.outages ?? 0;
    let reply: PageFetchReply;
    try {
      reply = await call(this.opts.nc, 'pageRequests', Subjects.pageRequests(d.tenant, d.snapshotId), req, { timeoutMs: this.opts.requestTimeoutMs });
    } catch (err) {
      if (this.closed || this.failure) return;
      const stillMissing = chunks.filter((c) => !this.have[c]);
      if (stillMissing.length === 0) return;
      this.opts.log?.debug({ snapshotId: d.snapshotId, chunks: stillMissing.length, attempt, err: (err as Error).message }, 'page fetch failed');
      if (await this.outageInterrupted(outagesBefore)) return this.fetch(stillMissing, attempt, true);
      if (attempt < RETRIES) return this.fetch(stillMissing, attempt + 1);
      this.fail(new FlurryError('unavailable', `the memory server of snapshot ${d.snapshotId} on host ${d.serverHostId} did not answer (${(err as Error).message}); its clones on this host are stopped`));
      return;
    }
    if (!reply.ok) {
      this.fail(FlurryError.fromWire(reply.error));
      return;
    }
    // Asked afresh: the watchdog counts the stall from here.
    this.lastProgress = Math.max(this.lastProgress, performance.now());
  }

  /**
   * Chunks come as separate messages with no delivery receipt. One watchdog
   * per cache: while chunks this host asked for are outstanding and none of
   * them has arrived for REDELIVER_MS (a stall), every chunk asked for that
   * long ago is asked for again at once (with `force`: the server sends it
   * even if it sent it lately); a chunk asked for STARVED_MS ago is asked for
   * again even while others arrive. Only chunks this host asked for count as
   * progress: with multicast, other hosts' chunks may flow while this host's
   * were lost (it was paused, or cut off). Stalls in a row beyond RETRIES fail
   * the cache; a stall across a broker outage, or one the watchdog saw late
   * because this process itself was stopped, is not counted.
   */
  private watchDelivery(): void {
    if (this.watchdog || this.closed || this.failure) return;
    const period = REDELIVER_MS / 2;
    const scheduled = performance.now();
    const outagesBefore = this.opts.link?.outages ?? 0;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      if (this.closed || this.failure) return;
      const now = performance.now();
      const stalled = now - this.lastProgress >= REDELIVER_MS;
      const outstanding = this.outstanding(now - (stalled ? REDELIVER_MS : STARVED_MS));
      if (outstanding.length === 0) {
        if (this.outstanding(now).length > 0) this.watchDelivery();
        return;
      }
      // Fired far later than asked: this process was stopped (SIGSTOP, a stall), not the server.
      const late = now - scheduled > period * 2 + 1000;
      void this.outageInterrupted(outagesBefore).then((interrupted) => {
        if (this.closed || this.failure) return;
        if (stalled && !interrupted && !late) this.stalls++;
        const d = this.opts.descriptor;
        this.opts.log?.debug({ snapshotId: d.snapshotId, chunks: outstanding.length, stalls: this.stalls, interrupted, late }, 'requested chunks did not arrive; asking again');
        if (this.stalls > RETRIES) {
          this.fail(new FlurryError('unavailable', `chunks of snapshot ${d.snapshotId} never arrived from host ${d.serverHostId}; its clones on this host are stopped`));
          return;
        }
        if (stalled) this.lastProgress = performance.now();
        const batch = this.opts.batchChunks ?? 256;
        for (let i = 0; i < outstanding.length; i += batch) void this.fetch(outstanding.slice(i, i + batch), 0, true);
      });
    }, period);
    this.watchdog.unref();
  }

  /** Chunks asked for (last) before `askedBefore` that have not arrived. */
  private outstanding(askedBefore: number): number[] {
    const out: number[] = [];
    if (this.missing === 0) return out;
    for (let c = 0; c < this.have.length; c++) if (this.requested[c] && !this.have[c] && !this.wanted.has(c) && this.askedAt[c] <= askedBefore) out.push(c);
    return out;
  }

  /**
   * Whether the broker went away since `outagesBefore` (or is away now): then
   * a request that failed says nothing about the memory server. Waits for the
   * broker to be back (at most MAX_OUTAGE_WAIT_MS, then it is the server's fault).
   */
  private async outageInterrupted(outagesBefore: number): Promise<boolean> {
    const link = this.opts.link;
    if (!link || (link.connected && link.outages === outagesBefore)) return false;
    return link.whenUp(MAX_OUTAGE_WAIT_MS).then(() => true, () => false);
  }

  /** Takes a run of chunks from the network: verified, then stored. */
  private accept(m: PageMessage): void {
    if (this.closed || this.failure) return;
    const d = this.opts.descriptor;
    const chunkBytes = d.pageSize * d.chunkPages;
    const bytes = m.bytes;
    this.stats.bytesReceived += bytes.length;
    for (let off = 0, c = m.chunk; off < bytes.length; off += chunkBytes, c++) {
      if (c >= this.have.length) {
        this.fail(new FlurryError('internal', `page message for snapshot ${d.snapshotId} names chunk ${c} beyond its ${this.have.length} chunks`));
        return;
      }
      const { start, end } = chunkRange(d, c);
      const chunk = bytes.subarray(off, off + (end - start));
      if (this.have[c]) {
        this.stats.duplicateChunks++;
        continue;
      }
      if (chunk.length !== end - start || !verifyChunk(d, c, chunk)) {
        this.fail(new FlurryError('internal', `chunk ${c} of snapshot ${d.snapshotId} failed its hash check (corrupted in transit or by the sender); clones that need it are stopped`));
        return;
      }
      this.store.put(c, start, chunk);
      this.have[c] = 1;
      if (this.fill?.asked[c]) this.fill.inFlight--;
      this.heldBytes += end - start;
      this.missing--;
      if (this.requested[c]) {
        this.stats.chunksUnicast++;
        this.lastProgress = performance.now();
        this.stalls = 0;
      } else this.stats.chunksMulticast++;
    }
    this.fillMore();
    if (this.missing === 0) for (const w of this.completeWaiters.splice(0)) w.resolve();
  }

  private fail(err: FlurryError): void {
    if (this.failure) return;
    this.failure = err;
    for (const l of this.failureListeners.splice(0)) l(err);
    for (const w of this.completeWaiters.splice(0)) w.reject(err);
  }

  /** Stops listening and frees the store; the caller must have stopped every clone using it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    this.unwatchLink?.();
    this.sub.unsubscribe();
    this.store.close();
  }
}
