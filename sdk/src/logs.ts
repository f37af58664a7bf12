/**
 * What guests logged, for their owner: `flurry.functions.logs(name)` and
 * `flurry.jobs.logs(id)` read the last lines kept, or with `follow: true`
 * follow new ones as they are stored (Server-Sent Events that resume after
 * a dropped connection).
 */
import { FlurryApiError, FlurryConnectionError } from './errors.js';
import { sleep } from './retry.js';
import { readServerSentEvents } from './sse.js';
import type { HttpRequest, Transport } from './transport.js';
import type { GuestLogLine } from './types.js';

/** The line's type is the API document's (types.ts), here beside the functions that read lines. */
export type { GuestLogLine };

/**
 * Which lines: the last `limit` (default 100, at most 10 000) of runs that ended at or after
 * `since` (a Date, ms since the epoch, or a duration ago such as `10m`).
 *
 * @example
 * await flurry.functions.logs('resize', { limit: 20, since: '1h' });
 */
export interface LogOptions {
  limit?: number;
  since?: Date | number | string;
  signal?: AbortSignal;
}

/** A job's lines: every clone's and the reduce's, or one `clone` (an index, or `reduce`). */
export interface JobLogOptions extends LogOptions {
  clone?: number | 'reduce';
}

/** Lines of one log route of the gateway: the last ones kept, or with `follow` a stream of them and each new one. */
export function readLogs(transport: Transport, path: string, options: JobLogOptions & { follow?: boolean }): Promise<GuestLogLine[]> | AsyncGenerator<GuestLogLine> {
  return options.follow ? followLogs(transport, path, options) : lastLines(transport, path, options);
}

async function lastLines(transport: Transport, path: string, options: JobLogOptions): Promise<GuestLogLine[]> {
  return (await transport.json<{ lines: GuestLogLine[] }>({ method: 'GET', path, query: queryOf(options, false) })).lines;
}

/**
 * The last lines kept, then each new one, until `signal` aborts or the client's retries give
 * up. A dropped connection is resumed with `Last-Event-ID`: no line is lost or repeated.
 */
async function* followLogs(transport: Transport, path: string, options: JobLogOptions): AsyncGenerator<GuestLogLine> {
  const request: HttpRequest = { method: 'GET', path, query: queryOf(options, true), headers: { accept: 'text/event-stream' } };
  const policy = transport.retries;
  /** Lines share their run's id: resume at the last run seen, skipping its lines already yielded. */
  let lastId: number | undefined;
  let seenOfLast = 0;
  let failures = 0;
  let failingSince = 0;
  for (;;) {
    const headers = new Headers(request.headers);
    if (lastId !== undefined) headers.set('last-event-id', String(lastId - 1));
    let skip = lastId === undefined ? 0 : seenOfLast;
    let failure: unknown;
    try {
      const stream = await transport.open({ ...request, headers }, options.signal);
      try {
        const body = stream.response.body;
        if (body === null) throw new Error('the log stream has no body');
        for await (const message of readServerSentEvents(body)) {
          if (message.event !== 'line') continue;
          const id = Number(message.id);
          if (id === lastId && skip > 0) {
            skip--;
            continue;
          }
          if (Number.isSafeInteger(id)) {
            seenOfLast = id === lastId ? seenOfLast + 1 : 1;
            lastId = id;
          }
          failures = 0;
          yield JSON.parse(message.data) as GuestLogLine;
        }
      } finally {
        stream.close();
      }
      failure = new Error('the log stream ended');
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason ?? err;
      if (err instanceof FlurryApiError && err.status !== 429 && err.status !== 503) throw err;
      failure = err;
    }
    if (failures++ === 0) failingSince = Date.now();
    const wait = policy.delayBefore(failures, failingSince, failure instanceof FlurryApiError ? failure.retryAfterSeconds : undefined);
    if (wait === undefined) throw failure instanceof FlurryApiError || failure instanceof FlurryConnectionError ? failure : transport.streamError(failure, request);
    await sleep(wait, options.signal);
  }
}

function queryOf(options: JobLogOptions, follow: boolean): Record<string, string> {
  const query: Record<string, string> = {};
  if (options.limit !== undefined) query.limit = String(options.limit);
  if (options.since !== undefined) query.since = options.since instanceof Date ? String(options.since.getTime()) : String(options.since);
  if (options.clone !== undefined) query.clone = String(options.clone);
  if (follow) query.follow = 'true';
  return query;
}
