/**
 * Publishes what guests logged to the guest logs stream (store-table.ts
 * `guestLogs`), one GuestLogBatch per run, for their owner to read through
 * the gateway (docs/api.md, "Guest logs").
 *
 * A slow or absent broker must not slow a call: `publish` only queues and
 * returns, and the queue is sent after the current turn of the event loop
 * (so after the run's reply), a few batches at a time. A batch is dropped,
 * and counted, when the broker is away, when the queue is full, or when the
 * stream does not acknowledge it in time.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { encode, GuestLogSubjects, type BrokerLink, type GuestLogBatch, type GuestLogSource, type Logger } from '@flurry/core';
import type { GuestLogLine } from './guest/guest-pool.js';

/** Batches waiting to be sent: about a second of a busy host's logging runs; more is dropped. */
export const MAX_QUEUED = 1000;
/** Batches awaiting the stream's acknowledgement at once. */
export const MAX_IN_FLIGHT = 8;
const ACK_TIMEOUT_MS = 5000;
/** Drops are logged at most this often (with the count so far), not once each. */
const DROP_WARNING_EVERY_MS = 60_000;

/** What a run logged: a CallResult, or the GuestCallError it failed with, has both fields. */
export interface RunLogs {
  logs: GuestLogLine[];
  droppedLogLines: number;
}

export interface GuestLogPublisherDeps {
  /** Stores one encoded batch under its subject; resolves once the stream acknowledged it. */
  store: (subject: string, data: Uint8Array) => Promise<unknown>;
  /** Whether the broker is reachable now: while it is not, batches are dropped at once. */
  connected: () => boolean;
  hostId: string;
  log: Logger;
}

/** A publisher into the guest logs stream over this connection. */
export function guestLogPublisher(nc: NatsConnection, link: BrokerLink, hostId: string, log: Logger): GuestLogPublisher {
  const js = jetstream(nc);
  return new GuestLogPublisher({ store: (subject, data) => js.publish(subject, data, { timeout: ACK_TIMEOUT_MS }), connected: () => link.connected, hostId, log });
}

/** The subject a batch is kept under: its tenant, then what ran. */
export function guestLogSubject(tenant: string, source: GuestLogSource): string {
  switch (source.kind) {
    case 'function': return GuestLogSubjects.function(tenant, source.name);
    case 'clone': return GuestLogSubjects.clone(tenant, source.jobId, source.index);
    case 'reduce': return GuestLogSubjects.reduce(tenant, source.jobId);
    case 'service': return GuestLogSubjects.service(tenant, source.service);
  }
}

export class GuestLogPublisher {
  /** Batches the stream acknowledged. */
  published = 0;
  /** Batches dropped: broker away, queue full, or not acknowledged. */
  dropped = 0;
  private readonly queue: GuestLogBatch[] = [];
  private inFlight = 0;
  private scheduled = false;
  private lastWarningAt = 0;

  constructor(private readonly deps: GuestLogPublisherDeps) {}

  /**
   * Queues the lines of one run and returns at once; a run that logged nothing publishes nothing.
   *
   * @example
   * publisher.publish(req.tenant, { kind: 'function', name: req.name }, req.requestId, result);
   */
  publish(tenant: string, source: GuestLogSource, requestId: string, run: RunLogs): void {
    if (run.logs.length === 0 && run.droppedLogLines === 0) return;
    if (!this.deps.connected()) return this.drop('the broker is away');
    if (this.queue.length >= MAX_QUEUED) return this.drop('the queue is full');
    this.queue.push({ at: Date.now(), tenant, source, requestId, hostId: this.deps.hostId, lines: run.logs, dropped: run.droppedLogLines });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.shift()!;
      this.inFlight++;
      // Through a promise: a store that throws at once is a failed store too.
      Promise.resolve().then(() => this.deps.store(guestLogSubject(batch.tenant, batch.source), encode(batch))).then(
        () => void this.published++,
        (err: unknown) => this.drop((err as Error).message),
      ).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private drop(reason: string): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.lastWarningAt < DROP_WARNING_EVERY_MS) return;
    this.lastWarningAt = now;
    this.deps.log.warn({ dropped: this.dropped, published: this.published, reason }, 'guest log lines dropped on their way to the logs stream');
  }
}
