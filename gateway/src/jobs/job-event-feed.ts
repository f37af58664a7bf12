/**
 * Reading a job's events (docs/jobs.md, "Events"): the SSE route sends each
 * kept event with its stream sequence as `id:`, and a reader whose connection
 * dropped asks for what follows with `Last-Event-ID` (job-event-writer.ts
 * stores them).
 *
 * Reading, the first `state` event: its id must be a sequence the record
 * already reflects, or the reader misses an event (the record lags the events
 * by up to 250 ms). The coordinator keeps in the record (`StoredJob.eventSeq`)
 * the sequence of the last event stored before it wrote the record: every
 * event up to it is in the record, every later one is sent after `state`.
 *
 * Failures: an id whose followers may no longer be kept (expired after a day,
 * or pushed out by a job over its per-job limit) gets a fresh `state` and
 * what follows it, as a new reader does; a terminal event the coordinator
 * recorded but never stored (it died in between) is made from the record
 * after 5 s of silence.
 */
import { jetstream, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeChecked, FlurryError, JobEventsStream, JobSubjects, TERMINAL_JOB_STATES, type JobEvent, type JobRecord } from '@flurry/core';
import type { JobStore } from './job-store.js';

/** A reader gets a keep-alive comment after this much silence, and the record is read again. */
const KEEP_ALIVE_MS = 5000;

/** An event as kept: its stream sequence (its id) and the event. */
export interface StoredJobEvent {
  seq: number;
  event: JobEvent;
}

/** Reads the job events stream. */
export class JobEventLog {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly jsm: JetStreamManager,
  ) {
    this.js = jetstream(nc);
  }

  /** The job's last kept event, if any. */
  async last(tenant: string, jobId: string): Promise<StoredJobEvent | undefined> {
    const m = await this.jsm.streams.getMessage(JobEventsStream, { last_by_subj: JobSubjects.events(tenant, jobId) });
    const event = m ? decodeEvent(m.data) : undefined;
    return m && event ? { seq: m.seq, event } : undefined;
  }

  /**
   * A sequence before every event of the job that is kept or still to come: for a record
   * that knows of no stored event (no `eventSeq`), everything of the job is news.
   */
  async beforeAll(tenant: string, jobId: string): Promise<number> {
    const subject = JobSubjects.events(tenant, jobId);
    const { state } = await this.jsm.streams.info(JobEventsStream, { subjects_filter: subject });
    // One answer gives both: with no event of the job kept at that instant, any later one comes after last_seq.
    if (!state.subjects?.[subject]) return state.last_seq;
    const first = await this.jsm.direct.getMessage(JobEventsStream, { seq: state.first_seq, next_by_subj: subject });
    return first ? first.seq - 1 : state.last_seq;
  }

  /** Whether every event of the job after `seq` is still kept (nothing after it expired or was pushed out). */
  async keptAfter(tenant: string, jobId: string, seq: number): Promise<boolean> {
    const subject = JobSubjects.events(tenant, jobId);
    const { state, config } = await this.jsm.streams.info(JobEventsStream, { subjects_filter: subject });
    // An id this stream never gave (a recreated stream, a made-up header).
    if (seq > state.last_seq) return false;
    const count = state.subjects?.[subject] ?? 0;
    const perJob = config.max_msgs_per_subject;
    // The stream drops its oldest messages first: nothing after `seq` is gone while the stream
    // still starts at or before it and the job is under its own limit.
    if (seq + 1 >= state.first_seq && (perJob <= 0 || count < perJob)) return true;
    if (count === 0) return false;
    const first = await this.jsm.direct.getMessage(JobEventsStream, { seq: state.first_seq, next_by_subj: subject });
    return first !== null && first.seq <= seq + 1;
  }

  /**
   * The job's events after `seq`, kept then live, in order, from an ordered consumer (it
   * survives broker reconnects); `undefined` after every `idleMs` of silence. Ends when
   * `signal` aborts.
   */
  async *follow(tenant: string, jobId: string, seq: number, idleMs: number, signal: AbortSignal): AsyncGenerator<StoredJobEvent | undefined> {
    const consumer = await this.js.consumers.get(JobEventsStream, { filter_subjects: JobSubjects.events(tenant, jobId), opt_start_seq: seq + 1 });
    const messages = await consumer.consume({ max_messages: 256 });
    const arrived: JsMsg[] = [];
    let wake: (() => void) | undefined;
    let failed: unknown;
    let ended = false;
    const pump = (async () => {
      try {
        for await (const m of messages) {
          arrived.push(m);
          wake?.();
        }
      } catch (err) {
        failed = err;
      } finally {
        ended = true;
        wake?.();
      }
    })();
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        const m = arrived.shift();
        if (m) {
          const event = decodeEvent(m.data);
          if (event) yield { seq: m.seq, event };
          continue;
        }
        if (ended) throw failed ?? new Error('the job events consumer stopped');
        let timer: NodeJS.Timeout | undefined;
        const idle = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false);
          timer = setTimeout(() => resolve(true), idleMs);
        }).finally(() => {
          clearTimeout(timer);
          wake = undefined;
        });
        if (idle) yield undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      messages.stop();
      await pump;
      // Ordered consumers are ephemeral; deleting it now spares the server its inactivity timeout.
      await consumer.delete().catch(() => undefined);
    }
  }
}

/** A kept event with its id, one made from the record (a terminal event that was never stored: no id), or a keep-alive. */
export type FeedItem = { id?: number; event: JobEvent } | { keepAlive: true };

/** The value of a `Last-Event-ID` header: undefined when absent or empty, else a sequence; anything else is a 400. */
export function parseLastEventId(header: string | undefined): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new FlurryError('bad_request', 'Last-Event-ID must be the id of an event of this stream (a non-negative integer)');
  return Number(value);
}

/**
 * One reader's events of a job. Throws `not_found` before anything is sent. Without
 * `lastEventId` (or one whose followers are no longer kept): `state` with the current record,
 * whose id is the last sequence the record reflects, then every later event; for a finished
 * job, `state` and the terminal event. With `lastEventId`: every event after it. Ends after
 * the terminal event, or when `signal` aborts.
 *
 * @example
 * const feed = await openJobEventFeed(store, log, 'default', 'job-1', parseLastEventId(header), signal);
 * for await (const item of feed) if (!('keepAlive' in item)) send(item.id, item.event);
 */
export async function openJobEventFeed(
  store: JobStore,
  log: JobEventLog,
  tenant: string,
  jobId: string,
  lastEventId: number | undefined,
  signal: AbortSignal,
): Promise<AsyncGenerator<FeedItem>> {
  const got = await store.get(tenant, jobId);
  if (!got) throw new FlurryError('not_found', `no job "${jobId}"`);
  const { record, eventSeq } = got.stored;
  if (lastEventId !== undefined && (await log.keptAfter(tenant, jobId, lastEventId))) return feed(lastEventId, []);
  if (isTerminal(record.state)) {
    const last = await log.last(tenant, jobId);
    // The record says all: the reader gets the end right after it.
    if (last && isTerminal(last.event.kind)) return feed(last.seq, [{ id: last.seq - 1, event: stateEvent(record) }, { id: last.seq, event: last.event }]);
  }
  const from = eventSeq ?? (await log.beforeAll(tenant, jobId));
  return feed(from, [{ id: from, event: stateEvent(record) }]);

  async function* feed(after: number, first: FeedItem[]): AsyncGenerator<FeedItem> {
    for (const item of first) {
      yield item;
      if ('event' in item && isTerminal(item.event.kind)) return;
    }
    let sent = after;
    if (yield* endedWithout(sent)) return;
    for await (const kept of log.follow(tenant, jobId, after, KEEP_ALIVE_MS, signal)) {
      if (kept) {
        sent = kept.seq;
        yield { id: kept.seq, event: kept.event };
        if (isTerminal(kept.event.kind)) return;
        continue;
      }
      yield { keepAlive: true };
      if (yield* endedWithout(sent)) return;
    }
  }

  /**
   * When the job is over and nothing after `sent` is kept: ends the feed, with the terminal
   * event made from the record unless the last kept event (already sent) was the end.
   */
  async function* endedWithout(sent: number): AsyncGenerator<FeedItem, boolean> {
    const now = await store.get(tenant, jobId);
    if (!now || !isTerminal(now.stored.record.state)) return false;
    const last = await log.last(tenant, jobId);
    if (last && last.seq > sent) return false;
    if (!last || !isTerminal(last.event.kind)) yield { event: terminalEvent(now.stored.record) };
    return true;
  }
}

function isTerminal(state: string): boolean {
  return (TERMINAL_JOB_STATES as readonly string[]).includes(state);
}

function stateEvent(job: JobRecord): JobEvent {
  return { kind: 'state', at: Date.now(), tenant: job.tenant, jobId: job.id, job };
}

function terminalEvent(job: JobRecord): JobEvent {
  return { kind: job.state as JobEvent['kind'], at: job.finishedAt ?? Date.now(), tenant: job.tenant, jobId: job.id, job, error: job.error, errors: job.errors };
}

/** An event as the coordinator wrote it; anything else (not msgpack, not an event) is dropped and counted. */
function decodeEvent(data: Uint8Array): JobEvent | undefined {
  return decodeChecked('JobEvent', data, JobSubjects.allEvents);
}
