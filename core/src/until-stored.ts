/**
 * Writes that must not be lost: a job clone's result (to its JetStream
 * stream, acknowledged), its large output (to the object store), a job's
 * events. A write
 * that gets no answer is tried again with back-off, and while the broker is
 * away it waits for it instead of spending attempts, until it is stored or
 * `giveUpMs` has passed. A result the coordinator never sees would cost the
 * clone's whole time limit and a retry; a result stored twice is harmless
 * (the results stream keeps the first per subject).
 *
 *   const outcome = await publishResult(js, link, subject, bytes, `${requestId}.${index}`);
 *   // 'stored' | 'duplicate' (this very message was stored before) | 'refused' (another result holds the subject)
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { BrokerLink } from './broker-link.js';
import { FlurryError } from './errors.js';
import { isStorageFull } from './store-limits.js';

export interface RetryOptions {
  /** Stop trying after this long (the write then fails with the last error). */
  giveUpMs?: number;
  /** Stop trying at once (the host is exiting). */
  stopped?: () => boolean;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
const DEFAULT_GIVE_UP_MS = 10 * 60_000;
/**
 * JetStream's code for a write a stream's limits refuse: a subject of a stream with `discard_new_per_subject`
 * holds its one message already ("maximum messages per subject exceeded"), or the stream is full ("maximum bytes exceeded").
 */
const LIMIT_REFUSED = 10077;

/** Another result holds the subject already. */
function isTaken(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === LIMIT_REFUSED && !isStorageFull(err);
}

/** Runs `write` until it resolves, waiting out broker outages; `permanent(err)` errors end it at once. */
export async function untilStored<T>(link: BrokerLink, write: () => Promise<T>, opts: RetryOptions & { permanent?: (err: unknown) => boolean } = {}): Promise<T> {
  const deadline = Date.now() + (opts.giveUpMs ?? DEFAULT_GIVE_UP_MS);
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    if (!link.connected) await link.whenUp(Math.max(0, deadline - Date.now()));
    try {
      return await write();
    } catch (err) {
      if (opts.permanent?.(err)) throw err;
      if (opts.stopped?.() || Date.now() + backoff > deadline) throw err;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    }
  }
}

export type PublishOutcome = 'stored' | 'duplicate' | 'refused';

/**
 * Publishes to a stream subject and waits for the acknowledgement. `msgId`
 * lets the stream drop a repeat of a publish whose acknowledgement was lost.
 */
export async function publishResult(js: JetStreamClient, link: BrokerLink, subject: string, data: Uint8Array, msgId: string, opts: RetryOptions = {}): Promise<PublishOutcome> {
  try {
    const ack = await untilStored(link, () => js.publish(subject, data, { msgID: msgId, timeout: 5000 }), {
      ...opts,
      // A full stream stays full for days (its messages age out): retrying would only hold the clone up.
      permanent: (err) => isTaken(err) || isStorageFull(err),
    });
    return ack.duplicate ? 'duplicate' : 'stored';
  } catch (err) {
    if (isTaken(err)) return 'refused';
    if (isStorageFull(err)) throw new FlurryError('storage_full', `the result on ${subject} could not be stored: ${(err as Error).message}`, { cause: err });
    throw new FlurryError('unavailable', `the result on ${subject} could not be stored: ${(err as Error).message}`, { cause: err });
  }
}
