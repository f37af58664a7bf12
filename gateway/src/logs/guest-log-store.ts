/**
 * Reading what guests logged (docs/api.md, "Guest logs"): the guest logs
 * stream keeps one GuestLogBatch per run under a subject that starts with
 * the tenant (`flurry.logs.<tenant>.fn.<name>`, `….job.<jobId>.<clone>`), so
 * a reader that builds its subject from the caller's tenant reads only that
 * tenant's lines. Every batch is checked when read back (checked-decode.ts):
 * one that is not a batch, or names another tenant, is dropped.
 *
 * A read is an ephemeral consumer filtered by subject: its pending count at
 * creation says how many kept batches to read before the backlog is done; a
 * follower keeps consuming after that. The last `limit` lines of the backlog
 * are kept, so a read costs the subject's kept batches (at most
 * GUEST_LOG_RUNS_KEPT per function or clone).
 */
import { AckPolicy, DeliverPolicy, jetstream, type ConsumerConfig, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { decodeChecked, GuestLogsStream, openStreamOf, type Fabric, type GuestLogBatch } from '@flurry/core';
import type { GuestLogRecord } from './log-line.js';

/** A record with its stream sequence: the SSE `id:` a follower resumes after. */
export interface KeptRecord {
  seq: number;
  record: GuestLogRecord;
}

/** Where a read starts: a time (ms since the epoch), or after a sequence a follower already has. */
export interface LogStart {
  sinceMs?: number;
  afterSeq?: number;
}

/** Batches asked for at once. */
const FETCH_BATCH = 256;
/** A backlog read that gets nothing for this long has all there is. */
const FETCH_WAIT_MS = 2000;
/** A consumer left behind by a reader that vanished is removed by the server after this long. */
const CONSUMER_IDLE_MS = 30_000;
const NANOS_PER_MS = 1_000_000;

/** The lines of one batch, in order, then the note on lines not kept. */
export function recordsOf(batch: GuestLogBatch): GuestLogRecord[] {
  const { source } = batch;
  const from: Partial<GuestLogRecord> =
    source.kind === 'function' ? { function: source.name }
      : source.kind === 'clone' ? { jobId: source.jobId, clone: source.index }
        : source.kind === 'reduce' ? { jobId: source.jobId, clone: 'reduce' }
          : { service: source.service, instanceId: source.instanceId };
  const base = { at: batch.at, requestId: batch.requestId, hostId: batch.hostId, ...from };
  const records: GuestLogRecord[] = batch.lines.map((line) => ({ ...base, level: line.level, message: line.message }));
  if (batch.dropped > 0) {
    records.push({ ...base, level: 'warn', message: `${batch.dropped} more lines of this run were over the per-call limit and not kept`, dropped: batch.dropped });
  }
  return records;
}

/** The last `limit` items pushed (older ones are let go in bulk, so a push costs O(1) on average). */
class LastOf<T> {
  private kept: T[] = [];
  constructor(private readonly limit: number) {}
  push(item: T): void {
    this.kept.push(item);
    if (this.kept.length >= 2 * this.limit) this.kept = this.kept.slice(-this.limit);
  }
  get items(): T[] {
    return this.kept.slice(-this.limit);
  }
}

/** A consumer of one read, and the kept batches it had to deliver when it was made. */
interface LogReader {
  pending: number;
  fetch(max: number): Promise<ConsumerMessages>;
  consume(): Promise<ConsumerMessages>;
  delete(): Promise<void>;
}

export class GuestLogStore {
  private readonly js: JetStreamClient;

  private constructor(private readonly jsm: JetStreamManager, fabric: Fabric) {
    this.js = jetstream(fabric.nc);
  }

  /** Creates the stream unless it exists: hosts only publish to it. */
  static async open(fabric: Fabric): Promise<GuestLogStore> {
    await openStreamOf(fabric, 'guestLogs');
    return new GuestLogStore(fabric.jsm, fabric);
  }

  /**
   * The last `limit` lines kept under `subject` (a filter that may end in a wildcard), from `start` on.
   *
   * @example
   * const lines = await logs.read('acme', GuestLogSubjects.function('acme', 'resize'), 100, { sinceMs: Date.now() - 3600_000 });
   */
  async read(tenant: string, subject: string, limit: number, start: LogStart): Promise<KeptRecord[]> {
    const reader = await this.open(subject, start);
    try {
      return await this.backlog(tenant, reader, limit);
    } finally {
      await reader.delete();
    }
  }

  /**
   * The last `limit` lines kept (as `read`), then each line stored later, until `signal` aborts.
   * Yields the backlog as one array, then an array per batch.
   */
  async *follow(tenant: string, subject: string, limit: number, start: LogStart, signal: AbortSignal): AsyncGenerator<KeptRecord[]> {
    const reader = await this.open(subject, start);
    let messages: ConsumerMessages | undefined;
    const stop = () => messages?.stop();
    signal.addEventListener('abort', stop);
    try {
      yield await this.backlog(tenant, reader, limit);
      if (signal.aborted) return;
      messages = await reader.consume();
      for await (const m of messages) {
        const records = this.decode(tenant, m);
        if (records.length > 0) yield records;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      messages?.stop();
      await reader.delete();
    }
  }

  /**
   * The last `limit` lines of the batches pending when the reader was made. It stops early at the
   * last one there is (`pending` 0): batches may expire or be pushed out while it reads; and when
   * none comes for FETCH_WAIT_MS, it has the rest already.
   */
  private async backlog(tenant: string, reader: LogReader, limit: number): Promise<KeptRecord[]> {
    const last = new LastOf<KeptRecord>(limit);
    let read = 0;
    let done = reader.pending === 0;
    while (!done) {
      const messages = await reader.fetch(Math.min(FETCH_BATCH, reader.pending - read));
      let got = 0;
      for await (const m of messages) {
        got++;
        for (const record of this.decode(tenant, m)) last.push(record);
        if (++read >= reader.pending || m.info.pending === 0) done = true;
      }
      if (got === 0) done = true;
    }
    return last.items;
  }

  /** An ephemeral consumer of the subject from `start`, and how many kept batches it has to deliver. */
  private async open(subject: string, start: LogStart): Promise<LogReader> {
    const config: Partial<ConsumerConfig> = {
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      inactive_threshold: CONSUMER_IDLE_MS * NANOS_PER_MS,
      mem_storage: true,
      ...(start.afterSeq !== undefined ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.afterSeq + 1 }
        : start.sinceMs !== undefined ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.sinceMs).toISOString() }
          : { deliver_policy: DeliverPolicy.All }),
    };
    const info = await this.jsm.consumers.add(GuestLogsStream, config);
    const consumer = await this.js.consumers.get(GuestLogsStream, info.name);
    return {
      pending: info.num_pending,
      fetch: (max) => consumer.fetch({ max_messages: max, expires: FETCH_WAIT_MS }),
      consume: () => consumer.consume({ max_messages: FETCH_BATCH }),
      // Gone already (the server removed it) is as good as deleted.
      delete: () => consumer.delete().then(() => undefined, () => undefined),
    };
  }

  private decode(tenant: string, m: JsMsg): KeptRecord[] {
    const batch = decodeChecked('GuestLogBatch', m.data, m.subject);
    // The subject is the tenant's; a batch naming another tenant was not published by a host for it.
    if (!batch || batch.tenant !== tenant) return [];
    return recordsOf(batch).map((record) => ({ seq: m.seq, record }));
  }
}
