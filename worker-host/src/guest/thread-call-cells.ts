/**
 * The shared memory between a pool's main thread and its call threads for
 * the calls a thread reads from its own connection (thread-channel.ts): what
 * the main thread must know of those calls without being woken for each one.
 *
 *   pool cells   BigInt64[2]   [0] when the watchdog's timer fires (epoch ms; 0: disarmed)  [1] unused
 *   tokens       32 B × 16     sha256 of each token granted (a ring, the oldest overwritten), then Int32 next
 *   thread slot  BigInt64[8]   the call running now: state, start (epoch ms), limit ms, socket descriptor,
 *                              frame id, the socket's inode, the key's id; and the µs spent in such calls in all
 *   key cells    BigInt64[2]   per function version: served (1/0), when its last thread-read call ended (epoch ms)
 *
 * A slot's `state` is 0 while the thread runs no such call, the call's serial
 * (> 0) while it runs one, and CLAIMED once the watchdog took it for a
 * timeout: the thread stores every other field first and the state last, and
 * ends a call with compare-and-swap of its serial back to 0, so a call is
 * ended by exactly one of the two (the watchdog's own compare-and-swap from
 * the serial it read to CLAIMED). Calls running now are the slots not at 0,
 * counted by the main thread when it needs them (heartbeat, drain, idle
 * eviction): a thread that dies mid-call leaves no counter raised, its slot
 * simply goes with it.
 *
 * Times are epoch ms from `performance.timeOrigin + performance.now()`, which
 * every thread reads alike and no wall-clock step moves.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const CLAIMED = -1n;
export const SLOT = { state: 0, startedAt: 1, limitMs: 2, fd: 3, frameId: 4, inode: 5, keyId: 6, ownUs: 7 } as const;
const SLOT_CELLS = 8;
export const KEY = { served: 0, lastEnded: 1 } as const;
const KEY_CELLS = 2;
export const POOL = { armedAt: 0 } as const;
/** Tokens kept: as many as the host's own channel keeps (call-channels.ts). */
export const TOKENS = 16;
const DIGEST = 32;

/** Epoch ms, alike in every thread of the process. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function newSlot(): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * SLOT_CELLS);
}

export function newKeyCells(): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * KEY_CELLS);
}

export function newPoolCells(): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * 2);
}

export function newTokenTable(): SharedArrayBuffer {
  return new SharedArrayBuffer(TOKENS * DIGEST + 4);
}

/** sha256 of a token: what the tables hold and compare (never the token). */
export function tokenDigest(token: Uint8Array): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Adds a token's digest to the table (once: a digest already there stays where it is). Main thread only. */
export function grantToken(table: SharedArrayBuffer, digest: Uint8Array): void {
  if (holdsToken(table, digest)) return;
  const next = new Int32Array(table, TOKENS * DIGEST, 1);
  const at = Atomics.load(next, 0) % TOKENS;
  new Uint8Array(table, at * DIGEST, DIGEST).set(digest);
  Atomics.store(next, 0, (at + 1) % TOKENS);
}

/**
 * Whether the table holds `digest`. A read torn by a grant meanwhile can only miss (the gateway then opens its
 * connection again); it cannot match, as a mix of two digests is the digest of no token anyone holds.
 */
export function holdsToken(table: SharedArrayBuffer, digest: Uint8Array): boolean {
  if (digest.length !== DIGEST) return false;
  let found = false;
  for (let i = 0; i < TOKENS; i++) {
    const held = new Uint8Array(table, i * DIGEST, DIGEST);
    // Every slot compared, found or not: the time taken says nothing of which one matched.
    if (timingSafeEqual(held, digest) && held.some((b) => b !== 0)) found = true;
  }
  return found;
}

export type Cells = BigInt64Array;

export function cells(buffer: SharedArrayBuffer): Cells {
  return new BigInt64Array(buffer);
}

/** Whether a slot's thread runs a call of its own connection now (or the watchdog claimed one). */
export function inOwnCall(slot: Cells): boolean {
  return Atomics.load(slot, SLOT.state) !== 0n;
}
