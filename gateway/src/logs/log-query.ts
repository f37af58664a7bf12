/**
 * The query of the log routes: `limit` (the last N lines, default 100),
 * `since` (a time, or how long ago), `follow` (an SSE stream of new lines)
 * and, for a job, `clone` (an index or `reduce`). Anything else, or a value
 * that is not one of these, is a 400 that says what is wrong.
 */
import { FlurryError } from '@flurry/core';

export const DEFAULT_LOG_LIMIT = 100;
export const MAX_LOG_LIMIT = 10_000;

export interface LogQuery {
  limit: number;
  /** Lines of runs that ended at or after this time (ms since the epoch). */
  sinceMs?: number;
  follow: boolean;
  /** A job's one clone, or its reduce; absent: every clone and the reduce. */
  clone?: number | 'reduce';
}

const AGO_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 24 * 3600_000 };

/**
 * Parses the query of a log route; `clone` is taken only where `cloneAllowed`.
 *
 * @example
 * parseLogQuery({ limit: ['20'], since: ['10m'] }, false, Date.now()); // { limit: 20, sinceMs: now - 600000, follow: false }
 */
export function parseLogQuery(query: Record<string, string[]>, cloneAllowed: boolean, nowMs: number): LogQuery {
  const known = cloneAllowed ? ['limit', 'since', 'follow', 'clone'] : ['limit', 'since', 'follow'];
  const one = (name: string): string | undefined => {
    const values = query[name];
    if (values === undefined) return undefined;
    if (values.length > 1) throw bad(`${name} is given ${values.length} times; give it once`);
    return values[0];
  };
  for (const name of Object.keys(query)) {
    if (!known.includes(name)) throw bad(`unknown query parameter "${name}" (known: ${known.join(', ')})`);
  }
  return {
    limit: parseLimit(one('limit')),
    sinceMs: parseSince(one('since'), nowMs),
    follow: parseFollow(one('follow')),
    clone: parseClone(one('clone')),
  };
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LOG_LIMIT;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_LOG_LIMIT)) throw bad(`limit must be a whole number of lines from 1 to ${MAX_LOG_LIMIT}, not "${value}"`);
  return n;
}

/** An RFC 3339 time, milliseconds since the epoch, or a duration ago (`30s`, `10m`, `2h`, `1d`). */
function parseSince(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const ago = /^(\d{1,9})([smhd])$/.exec(value);
  if (ago) return nowMs - Number(ago[1]) * AGO_UNITS_MS[ago[2]];
  if (/^\d{1,15}$/.test(value)) return Number(value);
  const ms = /^\d{4}-\d\d-\d\dT/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw bad(`since must be a time (2026-12-06T12:00:00Z), milliseconds since the epoch, or a duration ago (30s, 10m, 2h, 1d), not "${value}"`);
  return ms;
}

function parseFollow(value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === '' || value === 'true') return true;
  throw bad(`follow must be true or false, not "${value}"`);
}

function parseClone(value: string | undefined): number | 'reduce' | undefined {
  if (value === undefined || value === 'reduce') return value;
  if (/^\d{1,9}$/.test(value)) return Number(value);
  throw bad(`clone must be a clone's index (0, 1, ...) or "reduce", not "${value}"`);
}

function bad(message: string): FlurryError {
  return new FlurryError('bad_request', message);
}
