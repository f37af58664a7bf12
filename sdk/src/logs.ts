/**
 * What guests logged, for their owner: `flurry.functions.logs(name)` and
 * `flurry.jobs.logs(id)` read the last lines kept, or with `follow: true`
 * follow new ones as they are stored (Server-Sent Events that resume after
 * a dropped connection).
 */
import { follow } from './followed-stream.js';
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
  /** Lines share their run's id: resume at the last run seen, skipping its lines already yielded. */
  let lastId: number | undefined;
  let seenOfLast = 0;
  yield* follow(transport, request, {
    resumeFrom: () => (lastId === undefined ? undefined : String(lastId - 1)),
    endedEarly: 'the log stream ended',
    async *read(events, progressed) {
      let skip = lastId === undefined ? 0 : seenOfLast;
      for await (const message of events) {
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
        progressed();
        yield JSON.parse(message.data) as GuestLogLine;
      }
      return false;
    },
  }, options.signal);
}

function queryOf(options: JobLogOptions, follow: boolean): Record<string, string> {
  const query: Record<string, string> = {};
  if (options.limit !== undefined) query.limit = String(options.limit);
  if (options.since !== undefined) query.since = options.since instanceof Date ? String(options.since.getTime()) : String(options.since);
  if (options.clone !== undefined) query.clone = String(options.clone);
  if (follow) query.follow = 'true';
  return query;
}
