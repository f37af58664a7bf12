/**
 * The query of the log routes, declared for the document (`LogQuery`,
 * `JobLogQuery`: unknown parameters are refused there) and read into
 * numbers and times here: `limit` (the last N lines, default 100), `since`
 * (a time, or how long ago), `follow` (an SSE stream of new lines) and, for
 * a job, `clone` (an index or `reduce`). A value that is not one of these is
 * a 400 that says what it may be.
 */
import { z } from '@hono/zod-openapi';
import { FlurryError } from '@flurry/core';

export const DEFAULT_LOG_LIMIT = 100;
export const MAX_LOG_LIMIT = 10_000;

export const LogQuery = z.strictObject({
  limit: z.string().optional().openapi({ description: `The last N lines, 1 to ${MAX_LOG_LIMIT} (default ${DEFAULT_LOG_LIMIT})`, example: '100' }),
  since: z.string().optional().openapi({ description: 'Only runs that ended at or after: an RFC 3339 time, ms since the epoch, or a duration ago (30s, 10m, 2h, 1d)', example: '10m' }),
  follow: z.string().optional().openapi({ description: '`true`: Server-Sent Events, the last lines then each new one', example: 'true' }),
});
export const JobLogQuery = LogQuery.extend({
  clone: z.string().optional().openapi({ description: 'One clone\'s lines (its index) or the reduce\'s (`reduce`); default all', example: '3' }),
});

export interface LogRead {
  limit: number;
  /** Lines of runs that ended at or after this time (ms since the epoch). */
  sinceMs?: number;
  follow: boolean;
  /** A job's one clone, or its reduce; absent: every clone and the reduce. */
  clone?: number | 'reduce';
}

const AGO_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 24 * 3600_000 };

/**
 * Reads a log route's query (its shape already checked against `JobLogQuery` or `LogQuery`).
 *
 * @example
 * readLogQuery({ limit: '20', since: '10m' }, Date.now()); // { limit: 20, sinceMs: now - 600000, follow: false }
 */
export function readLogQuery(query: z.infer<typeof JobLogQuery>, nowMs: number): LogRead {
  return {
    limit: readLimit(query.limit),
    sinceMs: readSince(query.since, nowMs),
    follow: readFollow(query.follow),
    clone: readClone(query.clone),
  };
}

function readLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LOG_LIMIT;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_LOG_LIMIT)) throw bad(`limit must be a whole number of lines from 1 to ${MAX_LOG_LIMIT}, not "${value}"`);
  return n;
}

function readSince(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const ago = /^(\d{1,9})([smhd])$/.exec(value);
  if (ago) return nowMs - Number(ago[1]) * AGO_UNITS_MS[ago[2]];
  if (/^\d{1,15}$/.test(value)) return Number(value);
  const ms = /^\d{4}-\d\d-\d\dT/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw bad(`since must be a time (2026-12-06T12:00:00Z), milliseconds since the epoch, or a duration ago (30s, 10m, 2h, 1d), not "${value}"`);
  return ms;
}

function readFollow(value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === '' || value === 'true') return true;
  throw bad(`follow must be true or false, not "${value}"`);
}

function readClone(value: string | undefined): number | 'reduce' | undefined {
  if (value === undefined || value === 'reduce') return value;
  if (/^\d{1,9}$/.test(value)) return Number(value);
  throw bad(`clone must be a clone's index (0, 1, ...) or "reduce", not "${value}"`);
}

function bad(message: string): FlurryError {
  return new FlurryError('bad_request', message);
}
