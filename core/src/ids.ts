/** Short random ids for requests, hosts and jobs: sortable by time, safe in NATS subjects. */
import { randomFillSync } from 'node:crypto';

/**
 * Random bytes drawn from a pool filled 4 KiB at a time: a call takes three
 * ids (request id, trace id, span id), and `randomBytes` for each is a native
 * call and a Buffer apiece, which showed in the gateway's profile.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

/** `bytes` random bytes as lower-case hex (at most 4096). */
export function randomHex(bytes: number): string {
  if (bytes > pool.length) throw new RangeError(`randomHex takes at most ${pool.length} bytes`);
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}

export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomHex(6)}`;
}
