/**
 * Pre-copy live migration, transport-agnostic (Clark et al., NSDI 2005; Xen's
 * stop rules): copy the memory in rounds while the instance keeps serving,
 * then stop it, copy the rest with the globals, and commit. The caller wires
 * `source` and `target` to a pool each (in-process) or to a transport (NATS);
 * the driver only sequences the steps, decides when to stop and measures.
 *
 * Exactly one owner: a failure before the commit resumes the source; a
 * commit the target refuses (late, or another page count than was sent)
 * too; a commit whose answer is lost may have taken effect, so the source
 * stays stopped and asks the target (`outcome`) — committed: the source lets
 * go; refused: it resumes; nobody can tell: it lets go (one owner or none).
 */
import type { MigrationDowntime } from '@flurry/core';
import { PAGE_SIZE } from '@flurry/core/basics';
import type { GlobalValue } from '../guest/instance.js';
import type { MigrationRound } from '../guest/instance-migration.js';

export interface PrecopySource {
  /**
   * Before round 0: the digest of the parent snapshot the instance was forked from, when it can tell the pages
   * it wrote since (else no digest), and its memory size.
   */
  parent?(): Promise<{ digest?: string; memoryBytes: number }>;
  /** The target starts from the same parent: round 0 and the stop send only what differs from it. */
  fromParent?(): void;
  /** The next slice of the round under way (`more`: another follows), or of a new round. */
  round(): Promise<MigrationRound>;
  /**
   * Before each slice of round `round`, the slice before it in the round having carried `lastBytes` (0 before its
   * first): how long to wait first (ms; 0: go on), so that the instance's own requests keep their latency on the
   * source host (latency-pacing.ts). Bounded by the source: the copy always ends.
   */
  waitBeforeSlice?(round: number, lastBytes: number): number;
  /** A slice is sent (the target has it): its buffer may be read into again. */
  recycle?(sent: MigrationRound): void;
  /** Of the stop, `waitMs` waited for the request in progress, `readMs` scanned and copied the last pages (the rest: thread messages). */
  stopAndCopy(): Promise<MigrationRound & { globals: Record<string, GlobalValue>; readMs?: number; waitMs?: number }>;
  /**
   * The commit is on its way, its answer not in yet: the source may hand the requests it holds to the target,
   * which runs them only if the commit takes effect (else the source, resumed, runs them).
   */
  committing?(): void;
  /**
   * The target has it, or may have it (a commit whose outcome nobody could learn): the source lets go and
   * forwards what it held. Never both this and `abort`.
   */
  commit(): Promise<void> | void;
  /** After the commit, outside the pause: frees what the source still holds of the instance. */
  release?(): void;
  /** The target failed before the commit, or the commit did not take effect: the source serves again. */
  abort(): Promise<void> | void;
}

export interface PrecopyTarget {
  /**
   * Before round 0, with the source's parent digest (if any): the target gets ready and says whether it starts
   * from a parent with the same digest (round 0 may then skip the pages equal to it, which it must keep).
   */
  prepare?(memoryBytes: number, parentDigest: string | undefined): Promise<{ fromParent: boolean }>;
  apply(pages: Uint32Array, bytes: Uint8Array, memoryBytes: number): Promise<void>;
  /** Round 0 is all sent (the target clears what it did not cover); not called when it was `fromParent`. */
  settle?(): Promise<void>;
  /**
   * After round 0 (its bulk), and after each later round but the last: work that must not fall into the pause nor
   * the target's first answers (garbage collection of the rounds' messages).
   */
  quiesce?(): Promise<void>;
  /**
   * The last pages and the globals in as few steps as possible; once it
   * resolves the target owns the instance and answers its requests. Reports
   * how long the pages before the last step took (`sendMs`), if any.
   * `pagesSent`: every page sent, rounds and these last ones; the target
   * refuses a commit when it wrote another number. Rejects with
   * CommitOutcomeUnknown when the commit may have taken effect (its answer
   * was lost), with anything else when it did not. `onSent`: called once the commit is on its way, before its
   * answer.
   */
  commit(last: MigrationRound, globals: Record<string, GlobalValue>, pagesSent: number, onSent?: () => void): Promise<CommitTiming>;
  /**
   * After CommitOutcomeUnknown: asks until the target says whether the commit
   * took effect; a target that says no makes sure it never will. Rejects when
   * nobody could tell within the target's bound. Without it an unknown
   * outcome counts as a refusal.
   */
  outcome?(): Promise<CommitOutcome>;
  /** Best effort, on a failure before the commit (before the source resumes): the target drops what it received. */
  abort?(): Promise<void> | void;
}

/** What the target measured of the end of a migration (zero where it does not say). */
export interface CommitTiming {
  /** The last pages before the last step. */
  sendMs: number;
  /** The target's own time for the last step, and of that the last pages and globals in its guest thread. */
  targetCommitMs?: number;
  targetApplyMs?: number;
  /**
   * Of the commit's round trip, the way there (to the target's handler, its decoding included) and back (from its
   * answer), where both hosts read one clock (the same machine); undefined where the target does not say.
   */
  outMs?: number;
  backMs?: number;
  /** The pages the target wrote into the instance, every round and the last ones (targets that count them). */
  pagesApplied?: number;
}

/** A commit whose answer never came (lost, timed out, garbled): it may have taken effect. */
export class CommitOutcomeUnknown extends Error {
  override readonly name = 'CommitOutcomeUnknown';
}

/** What a target says of a commit whose answer was lost: it took effect, or it never will (`error` says why). */
export type CommitOutcome = { committed: true; timing: CommitTiming } | { committed: false; error: Error };

/**
 * Adaptive pacing of the pre-copy rounds (Clark et al.): round 0 at `startBytesPerS`, each later round at the
 * dirtying rate of the round before plus `marginBytesPerS` (never slower than the round before), at most
 * `capBytesPerS`. The last pages, in the pause, are never paced.
 */
export interface Pacing {
  startBytesPerS: number;
  marginBytesPerS: number;
  capBytesPerS: number;
}

export interface PrecopyOptions {
  /** Stop when the dirty set would take at most this long to copy (default 30 ms). */
  downtimeBudgetMs?: number;
  /** Rounds before stop-and-copy at most, round 0 included (default 30, as Xen); 0: no pre-copy, stop first and copy everything. */
  maxRounds?: number;
  /** Rate-limit the rounds (default: each as fast as it goes). */
  pacing?: Pacing;
}

/** A paced round sends pieces of at most this many page bytes, one at a time, so that no burst holds the CPU or the connection. */
export const PACED_PIECE_BYTES = 256 * 1024;

/** Pacing from round 0's rate in MiB a second with Clark et al.'s proportions (margin half of it, cap five times it); 0: none. */
export function pacingFrom(startMiBPerS: number): Pacing | undefined {
  if (startMiBPerS <= 0) return undefined;
  const start = startMiBPerS * 1024 * 1024;
  return { startBytesPerS: start, marginBytesPerS: start / 2, capBytesPerS: 5 * start };
}

/** The rate of a paced round after one of `pages` that took `ms`, the last at `rate` (bytes a second). */
export function nextRate(p: Pacing, rate: number, dirtiedBytes: number, ms: number): number {
  const dirtying = ms > 0 ? (dirtiedBytes * 1000) / ms : p.capBytesPerS;
  return Math.min(p.capBytesPerS, Math.max(rate, dirtying + p.marginBytesPerS));
}

export type StopReason = 'budget' | 'not-shrinking' | 'max-rounds' | 'stop-and-copy';

export interface RoundRecord {
  pages: number;
  bytes: number;
  /** Reading the round on the source and applying it on the target. */
  ms: number;
  /** Paced: the rate it was sent at, bytes a second. */
  paceBytesPerS?: number;
  /** The time it waited before its slices for the instance's requests (waitBeforeSlice), ms. */
  waitedMs?: number;
}

export interface PrecopyReport {
  rounds: RoundRecord[];
  stopReason: StopReason;
  /** Pages copied during stop-and-copy. */
  finalPages: number;
  /** Before round 0: the parent's digest and the target's prepare (which may boot the parent there). */
  prepareMs: number;
  /** From stopping the instance to the commit: when requests wait. */
  downtimeMs: number;
  /**
   * Downtime's parts: `stopMs` from stopping to the last pages in hand (`waitMs` waiting for the request in
   * progress, then `readMs` of dirty scan and copy), `sendMs` the last pages before the last step (large final rounds),
   * `commitMs` the last step (last pages, globals, the target taking the instance's subject; of it the target's
   * own `targetCommitMs`, of that `targetApplyMs` in its guest thread; the rest is transport and scheduling: of it
   * `commitOutMs` on the way there and `commitBackMs` back, where the target says and both read one clock),
   * `releaseMs` the source letting go (held requests handed on, unsubscribe).
   */
  downtime: MigrationDowntime;
  totalMs: number;
  /** Page bytes sent, every round and stop-and-copy. */
  totalBytes: number;
  /** Pages sent, every round and stop-and-copy, and written into the instance on the target (where it counts them): equal. */
  pagesSent: number;
  pagesApplied?: number;
  /** The commit's answer was lost and the target was asked for its outcome. */
  outcomeAsked?: boolean;
  /** The per-page cost measured in the rounds, which the budget rule used. */
  perPageMs: number;
  /** The instance's memory at the stop: `totalBytes` / `memoryBytes` is what the migration sent against its size. */
  memoryBytes: number;
  /** Round 0 sent only the pages written since the fork: the target started from its own copy of the same parent. */
  fromParent: boolean;
}

/** Why to stop after a round of `pages` (or undefined to go on). Exported for tests. */
export function stopRule(history: number[], perPageMs: number, budgetMs: number, maxRounds: number): StopReason | undefined {
  const round = history.length - 1;
  const pages = history[round]!;
  // Round 0 copies everything (or all written since the fork): its size says nothing about the writable working set.
  // A budget of 0 stops only when nothing is dirty (a round's copy time can round to 0).
  if (round >= 1 && (pages === 0 || (budgetMs > 0 && pages * perPageMs <= budgetMs))) return 'budget';
  if (round >= 2 && pages >= history[round - 1]!) return 'not-shrinking';
  if (history.length >= maxRounds) return 'max-rounds';
  return undefined;
}

export async function precopy(source: PrecopySource, target: PrecopyTarget, opts: PrecopyOptions = {}): Promise<PrecopyReport> {
  const budgetMs = opts.downtimeBudgetMs ?? 30;
  const maxRounds = Math.max(0, opts.maxRounds ?? 30);
  const started = performance.now();
  const rounds: RoundRecord[] = [];
  const history: number[] = [];
  let totalBytes = 0;
  let copiedPages = 0;
  let copiedMs = 0;
  let stopReason: StopReason | undefined = maxRounds === 0 ? 'stop-and-copy' : undefined;
  /** From the source's commit on, a failure no longer resumes it. */
  let letGo = false;
  let fromParent = false;
  const { pacing } = opts;
  let rate = pacing?.startBytesPerS ?? Infinity;
  /** Time spent in the copy itself (reading and applying, not the pacing's waits nor their timers' lateness). */
  let work = 0;
  const timed = async <T>(step: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await step();
    } finally {
      work += performance.now() - t;
    }
  };
  /** Sends a slice in pieces at `rate`. */
  const paced = async (slice: MigrationRound, sentBefore: number, t0: number): Promise<void> => {
    const per = slice.pages.length > 0 ? slice.bytes.length / slice.pages.length : 0;
    const step = Math.max(1, Math.floor(PACED_PIECE_BYTES / Math.max(1, per)));
    for (let i = 0; i < slice.pages.length || i === 0; i += step) {
      const end = Math.min(slice.pages.length, i + step);
      const due = t0 + ((sentBefore + i * per) * 1000) / rate - performance.now();
      if (due > 0) await new Promise((res) => setTimeout(res, due));
      await timed(() => target.apply(slice.pages.subarray(i, end), slice.bytes.subarray(i * per, end * per), slice.memoryBytes));
    }
  };
  const copyRound = async () => {
    const t0 = performance.now();
    work = 0;
    let pages = 0;
    let bytes = 0;
    let waited = 0;
    let lastBytes = 0;
    for (let more = true; more; ) {
      const wait = source.waitBeforeSlice?.(rounds.length, lastBytes) ?? 0;
      if (wait > 0) {
        const t = performance.now();
        await new Promise((res) => setTimeout(res, wait));
        waited += performance.now() - t;
      }
      const slice = await timed(() => source.round());
      // Later rounds: their whole size (known at their first slice) over the round before's time is its dirtying rate.
      if (pacing && rounds.length > 0 && pages === 0) rate = nextRate(pacing, rate, slice.bytes.length + (slice.left ?? 0) * PAGE_SIZE, rounds.at(-1)!.ms);
      if (pacing) await paced(slice, bytes, t0);
      else await timed(() => target.apply(slice.pages, slice.bytes, slice.memoryBytes));
      pages += slice.pages.length;
      bytes += slice.bytes.length;
      lastBytes = slice.bytes.length;
      source.recycle?.(slice);
      more = slice.more === true;
    }
    if (rounds.length === 0 && !fromParent) await target.settle?.();
    const ms = performance.now() - t0;
    rounds.push({ pages, bytes, ms, ...(pacing ? { paceBytesPerS: rate } : {}), ...(source.waitBeforeSlice ? { waitedMs: waited } : {}) });
    history.push(pages);
    totalBytes += bytes;
    copiedPages += pages;
    // The budget rule needs what a page costs to copy (as the unpaced stop-and-copy will), not the round's wall time.
    copiedMs += work;
  };
  try {
    const parent = await source.parent?.();
    if (parent && target.prepare) fromParent = (await target.prepare(parent.memoryBytes, parent.digest)).fromParent && parent.digest !== undefined;
    if (fromParent) source.fromParent?.();
    const prepareMs = performance.now() - started;
    while (!stopReason) {
      await copyRound();
      stopReason = stopRule(history, copiedPages > 0 ? copiedMs / copiedPages : 0, budgetMs, maxRounds);
      // The target's garbage of each round (its apply messages: about 4.5 MiB of buffers each, mostly the NATS
      // client's reassembly) collected before the next round, so that none is left to collect in the pause or while
      // the target answers its first requests (a mark-compact of its main thread fell there after round 1 or 2:
      // 6-45 ms). After round 0 always (the bulk); never between the last round and the stop, where it delayed the
      // stop (a larger last round) and its after-effects slowed the commit.
      if (rounds.length === 1 || !stopReason) await target.quiesce?.();
    }
    const stopped = performance.now();
    const last = await source.stopAndCopy();
    const read = performance.now();
    const pagesSent = copiedPages + last.pages.length;
    let timing: CommitTiming;
    let outcomeAsked = false;
    try {
      timing = await target.commit(last, last.globals, pagesSent, () => source.committing?.());
    } catch (err) {
      if (!(err instanceof CommitOutcomeUnknown) || !target.outcome) throw err;
      // The target may serve the instance already: resuming here could make two owners.
      outcomeAsked = true;
      let told: CommitOutcome;
      try {
        told = await target.outcome();
      } catch (unknown) {
        // Nobody can tell: letting go leaves one owner (the target, if it committed) or none, never two.
        letGo = true;
        await source.commit();
        source.release?.();
        throw unknown;
      }
      if (!told.committed) throw told.error;
      timing = told.timing;
    }
    const committed = performance.now();
    letGo = true;
    await source.commit();
    const end = performance.now();
    source.release?.();
    totalBytes += last.bytes.length;
    return {
      rounds,
      stopReason,
      finalPages: last.pages.length,
      prepareMs,
      downtimeMs: end - stopped,
      downtime: {
        stopMs: read - stopped, waitMs: last.waitMs ?? 0, readMs: last.readMs ?? 0, sendMs: timing.sendMs, commitMs: committed - read - timing.sendMs,
        targetApplyMs: timing.targetApplyMs ?? 0, targetCommitMs: timing.targetCommitMs ?? 0, releaseMs: end - committed,
        ...(timing.outMs !== undefined && timing.backMs !== undefined ? { commitOutMs: timing.outMs, commitBackMs: timing.backMs } : {}),
      },
      totalMs: end - started,
      totalBytes,
      pagesSent,
      ...(timing.pagesApplied !== undefined ? { pagesApplied: timing.pagesApplied } : {}),
      ...(outcomeAsked ? { outcomeAsked } : {}),
      perPageMs: copiedPages > 0 ? copiedMs / copiedPages : 0,
      memoryBytes: last.memoryBytes,
      fromParent,
    };
  } catch (err) {
    // The first failure is the one to report; the target drops what it has, and the source resumes if it can (and still holds the instance).
    if (!letGo) {
      await Promise.resolve()
        .then(() => target.abort?.())
        .catch(() => undefined);
      await Promise.resolve()
        .then(() => source.abort())
        .catch(() => undefined);
    }
    throw err;
  }
}
