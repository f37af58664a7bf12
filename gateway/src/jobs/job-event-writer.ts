/**
 * Writing a job's events (docs/jobs.md, "Events"). Every JobEvent is a message
 * of the JetStream stream FLURRY_JOB_EVENTS on `flurry.events.<tenant>.job.<jobId>`,
 * and its stream sequence is its id (job-event-feed.ts reads them back).
 *
 *   JobRun.emit ─► JobEventWriter ─► FLURRY_JOB_EVENTS ─► openJobEventFeed ─► GET /v1/jobs/:id/events
 *                  one at a time,                          `state`, then every kept
 *                  acknowledged, retried                   and live event, in order
 *
 * Writing: a run's writer publishes an event only once the previous one is
 * stored, so the stream holds a job's events in the order they happened
 * (untilStored: retried with back-off, waiting while the broker is away). Each
 * message has a Nats-Msg-Id, so a publish retried after a lost acknowledgement
 * is stored once; facts that happen once per job (`clone.done` of an index,
 * `reduced`, the end) have a fixed one, so a coordinator that takes over and
 * reports them again within the duplicate window adds nothing. While the
 * broker is unreachable it retries with back-off, for at most
 * EVENT_GIVE_UP_MS (shorter than the duplicate window); then it logs what it
 * dropped. Progress reports still waiting are replaced by the same clone's
 * newer one, so a slow broker cannot make the queue grow past the clone count.
 */
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { encode, JobSubjects, untilStored, type BrokerLink, type JobEvent, type Logger, type StoredJob } from '@flurry/core';

/** A writer stops retrying an event this long after it was emitted: within the stream's duplicate window, so that every retry of an event is recognised as one. */
const EVENT_GIVE_UP_MS = 3 * 60_000;
const PUBLISH_TIMEOUT_MS = 5000;

interface Pending {
  event: JobEvent;
  msgID: string;
  emittedAt: number;
}

/**
 * Stores one job run's events in order. `append` never throws and never waits;
 * `onStored(seq, event)` is told each event and its sequence once the stream has it.
 *
 * @example
 * const writer = new JobEventWriter(jetstream(nc), () => nc.isClosed(), fabric.link, log, (seq) => (stored.eventSeq = Math.max(stored.eventSeq ?? 0, seq)));
 * writer.append({ kind: 'placed', at: Date.now(), tenant, jobId, host: 'host-1' });
 */
export class JobEventWriter {
  private readonly queue: Pending[] = [];
  private writing = false;

  constructor(
    private readonly js: Pick<JetStreamClient, 'publish'>,
    /** The connection to the broker is closed for good: nothing more can be stored. */
    private readonly closed: () => boolean,
    /** While the broker is away the writer waits for it; the give-up clock runs on. */
    private readonly link: BrokerLink,
    private readonly log: Logger,
    private readonly onStored: (seq: number, event: JobEvent) => void,
  ) {}

  append(event: JobEvent): void {
    if (event.kind === 'progress') {
      const waiting = this.queue.findIndex((p) => p.event.kind === 'progress' && p.event.index === event.index);
      if (waiting !== -1) this.queue.splice(waiting, 1);
    }
    this.queue.push({ event, msgID: messageId(event), emittedAt: Date.now() });
    if (!this.writing) void this.writeAll();
  }

  /**
   * Writes the queue until it is empty. `writing` is cleared in the same step that finds it empty: cleared
   * a few promise steps later, it left an event appended meanwhile (a `forked` whose fork reply came with
   * the last event's acknowledgement) unwritten until the next event came, a `done` for good.
   */
  private async writeAll(): Promise<void> {
    this.writing = true;
    let next: Pending | undefined;
    try {
      for (next = this.queue.shift(); next; next = this.queue.shift()) {
        if (!(await this.write(next))) this.queue.length = 0;
      }
    } catch (err) {
      this.log.error({ jobId: next?.event.jobId, err: (err as Error).message }, 'job event writer failed');
    } finally {
      this.writing = false;
    }
  }

  /** Publishes one event until the stream acknowledges it; false when it gave up (and logged what it dropped). */
  private async write(p: Pending): Promise<boolean> {
    const subject = JobSubjects.events(p.event.tenant, p.event.jobId);
    const data = encode(p.event);
    try {
      const ack = await untilStored(this.link, () => this.js.publish(subject, data, { msgID: p.msgID, timeout: PUBLISH_TIMEOUT_MS }), {
        giveUpMs: Math.max(0, p.emittedAt + EVENT_GIVE_UP_MS - Date.now()),
        stopped: this.closed,
      });
      this.onStored(ack.seq, p.event);
      return true;
    } catch (err) {
      const closed = this.closed();
      const fields = { jobId: p.event.jobId, kind: p.event.kind, dropped: 1 + this.queue.length, err: (err as Error).message };
      if (closed) this.log.warn(fields, 'job events dropped: the connection to the broker is closed');
      else this.log.error(fields, `job events dropped: the broker did not store them for ${EVENT_GIVE_UP_MS / 1000} s`);
      return false;
    }
  }
}

/**
 * Notes in the job's stored record that the stream has `event` at `seq`: `eventSeq` (what the
 * record reflects, for the SSE route) and the clones whose `clone.done` is stored (for a
 * coordinator that resumes the job). True when the record must be written for it.
 */
export function recordStored(stored: StoredJob, seq: number, event: JobEvent): boolean {
  stored.eventSeq = Math.max(stored.eventSeq ?? 0, seq);
  if (event.kind !== 'clone.done' || typeof event.index !== 'number') return false;
  (stored.doneEventsStored ??= []).push(event.index);
  return true;
}

/** The Nats-Msg-Id of an event: fixed for what happens once per job, unique otherwise. */
function messageId(event: JobEvent): string {
  switch (event.kind) {
    case 'clone.done':
      return `${event.jobId}.clone.done.${String(event.index)}`;
    case 'reduced':
    case 'done':
    case 'failed':
    case 'cancelled':
      return `${event.jobId}.${event.kind}`;
    default:
      return `${event.jobId}.${randomUUID()}`;
  }
}
