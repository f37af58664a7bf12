/**
 * Following a Server-Sent Events route of the gateway across dropped connections: the job
 * events and the guest log lines both resume with `Last-Event-ID` and wait between attempts as
 * the client's `retries` say.
 */
import { FlurryApiError, FlurryConnectionError } from './errors.js';
import { sleep } from './retry.js';
import { readServerSentEvents, type ServerSentEvent } from './sse.js';
import type { HttpRequest, Transport } from './transport.js';

export interface FollowedStream<T> {
  /** The `Last-Event-ID` of the next connection (undefined: from the start). */
  resumeFrom(): string | undefined;
  /**
   * Reads one connection's events, yielding what the caller gets; calls `progressed()` when one
   * moved the stream on (the count of failed attempts starts again). Returns true when the stream
   * is complete, false when it ended early (a failure, retried).
   */
  read(events: AsyncIterable<ServerSentEvent>, progressed: () => void): AsyncGenerator<T, boolean>;
  /** Why an early end is a failure, for the error when the retries give up. */
  endedEarly: string;
}

/**
 * Yields what `stream.read` makes of each connection until it completes, `signal` aborts, the
 * gateway refuses for good (an error status other than 429/503), or the retries give up: then
 * it throws the gateway's FlurryApiError or a FlurryConnectionError.
 */
export async function* follow<T>(transport: Transport, request: HttpRequest, stream: FollowedStream<T>, signal?: AbortSignal): AsyncGenerator<T> {
  const policy = transport.retries;
  let failures = 0;
  let failingSince = 0;
  for (;;) {
    const headers = new Headers(request.headers);
    const from = stream.resumeFrom();
    if (from !== undefined) headers.set('last-event-id', from);
    let failure: unknown;
    try {
      const opened = await transport.open({ ...request, headers }, signal);
      try {
        const body = opened.response.body;
        if (body === null) throw new Error('the stream has no body');
        if (yield* stream.read(readServerSentEvents(body), () => (failures = 0))) return;
      } finally {
        opened.close();
      }
      failure = new Error(stream.endedEarly);
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (err instanceof FlurryApiError && err.status !== 429 && err.status !== 503) throw err;
      failure = err;
    }
    if (failures++ === 0) failingSince = Date.now();
    const wait = policy.delayBefore(failures, failingSince, failure instanceof FlurryApiError ? failure.retryAfterSeconds : undefined);
    if (wait === undefined) throw failure instanceof FlurryApiError || failure instanceof FlurryConnectionError ? failure : transport.streamError(failure, request);
    await sleep(wait, signal);
  }
}
