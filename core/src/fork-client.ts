/**
 * Forking from outside the hosts, the one client of the hosts' fork subjects:
 * ask a host to snapshot a warm parent, ask hosts to run clones of it, gather
 * results sent to an inbox of the caller, stop a job's clones, release a
 * snapshot. The job coordinator, the tests and the benchmarks all use it.
 *
 *   requestSnapshot ─► host: parent booted, snapshot made ─► descriptor
 *   adoptAhead      ─► hosts: snapshot adopted (a fork request with no clones), before the fork
 *   requestFork     ─► host: clones queued (ForkReply)     ─► results to req.resultSubject
 *   ResultInbox        an inbox for those results, waited on with a time limit
 *   requestCancel / requestRelease ─► host: clones stopped / snapshot dropped
 *
 * Failures: a host's refusal is thrown as its FlurryError; no answer (in
 * time, or nobody listening) is a CallFailed (nats-call.ts); with `link`, a
 * broker outage while the answer is awaited ends the wait at once as
 * `unavailable` (the request may or may not have reached the host: the caller
 * decides whether to send it again).
 */
import { createInbox, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { BrokerLink } from './broker-link.js';
import { FlurryError } from './errors.js';
import { call, listen, type CallKind, type ReplyOf, type RequestOf } from './nats-call.js';
import {
  JobSubjects, Subjects,
  type CancelReply, type CancelRequest, type CloneResult, type ForkMode, type ForkReply, type ForkRequest, type ReleaseReply, type ReleaseRequest, type SnapshotReply, type SnapshotRequest,
} from './protocol.js';

export type SnapshotMade = Extract<SnapshotReply, { ok: true }>;
export type ForkStarted = Extract<ForkReply, { ok: true }>;

export interface HostCallOptions {
  /** Default: the subject table's (subject-table.ts). */
  timeoutMs?: number;
  /** Gives up when the broker connection drops before the answer (`unavailable`: the outcome is unknown). */
  link?: BrokerLink;
  /** Sent with the request (the job's trace: trace.ts). */
  headers?: MsgHdrs;
}

/** One call to one host, given up on a broker outage when `opts.link` is set. */
async function askHost<K extends CallKind>(nc: NatsConnection, kind: K, subject: string, request: RequestOf<K>, opts: HostCallOptions): Promise<ReplyOf<K>> {
  const asked = call(nc, kind, subject, request, { timeoutMs: opts.timeoutMs, headers: opts.headers });
  return opts.link ? opts.link.orOutage(asked) : asked;
}

/** Boots a parent on `hostId` (or reuses a kept one) and snapshots it. */
export async function requestSnapshot(nc: NatsConnection, hostId: string, req: SnapshotRequest, opts: HostCallOptions = {}): Promise<SnapshotMade> {
  const reply = await askHost(nc, 'snapshot', Subjects.snapshot(hostId), req, opts);
  if (!reply.ok) throw FlurryError.fromWire(reply.error);
  return reply;
}

/** Asks `hostId` to run the request's clones; resolves once the host says they are queued (their results go to `req.resultSubject`). */
export async function requestFork(nc: NatsConnection, hostId: string, req: ForkRequest, opts: HostCallOptions = {}): Promise<ForkStarted> {
  const reply = await askHost(nc, 'fork', Subjects.fork(hostId), req, opts);
  if (!reply.ok) throw FlurryError.fromWire(reply.error);
  return reply;
}

/** Stops the clones of a snapshot on `hostId` now (only a job's, when `req.jobId` is set); the snapshot stays. */
export async function requestCancel(nc: NatsConnection, hostId: string, req: CancelRequest, opts: HostCallOptions = {}): Promise<CancelReply> {
  return askHost(nc, 'cancel', JobSubjects.cancel(hostId), req, opts);
}

/** Drops a snapshot on `hostId` (as `req.holder`, when it is a kept parent's) and returns what its page server and cache moved. */
export async function requestRelease(nc: NatsConnection, hostId: string, req: ReleaseRequest, opts: HostCallOptions = {}): Promise<ReleaseReply> {
  return askHost(nc, 'release', Subjects.release(hostId), req, opts);
}

/** Tells hosts to drop a snapshot (the parent's memory server, clones' caches) and returns what each moved. */
export async function releaseSnapshot(nc: NatsConnection, hostIds: string[], tenant: string, snapshotId: string): Promise<ReleaseReply[]> {
  return Promise.all(hostIds.map((h) => requestRelease(nc, h, { tenant, snapshotId }, { timeoutMs: 60_000 })));
}

/**
 * An inbox of the caller for the results of clones indexed 0 to `expected - 1`
 * (`flurry.fork.<id>` for a plain fork, `flurry.reduce.<id>` for a job's
 * reduce): the first result of each index counts, anything else is dropped.
 */
export class ResultInbox {
  /** By clone index. */
  readonly results: CloneResult[] = [];
  private left: number;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly sub: Subscription;

  private constructor(
    nc: NatsConnection,
    family: 'fork' | 'reduce',
    readonly subject: string,
    private readonly expected: number,
    onResult?: (r: CloneResult) => void,
  ) {
    this.left = expected;
    this.done = new Promise<void>((r) => (this.resolveDone = r));
    if (expected === 0) this.resolveDone();
    this.sub = listen(nc, family === 'fork' ? 'forkResults' : 'reduceResult', subject, (r) => {
      if (r.index >= this.expected || this.results[r.index]) return; // a clone that ran twice counts once
      this.results[r.index] = r;
      onResult?.(r);
      if (--this.left === 0) this.resolveDone();
    });
  }

  /** Subscribed and known to the broker: requests naming `subject` may go out. */
  static async open(nc: NatsConnection, family: 'fork' | 'reduce', expected: number, onResult?: (r: CloneResult) => void): Promise<ResultInbox> {
    const inbox = new ResultInbox(nc, family, createInbox(`flurry.${family}`), expected, onResult);
    await nc.flush();
    return inbox;
  }

  /**
   * Every expected result, by index. Throws `timeout` after `timeoutMs`, and,
   * with `link`, `unavailable` on a broker outage (results published meanwhile
   * to an inbox are lost: they are not kept anywhere).
   */
  async all(timeoutMs: number, link?: BrokerLink): Promise<CloneResult[]> {
    let timer: NodeJS.Timeout | undefined;
    const finished = Promise.race([
      this.done,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new FlurryError('timeout', `clones did not all finish within ${timeoutMs} ms (${this.left} left)`)), timeoutMs))),
    ]);
    try {
      await (link ? link.orOutage(finished) : finished);
      return this.results;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

export interface ForkOptions {
  requestId: string;
  descriptor: Uint8Array;
  /** Clone indices per host id. */
  placement: Map<string, number[]>;
  count: number;
  /** Input of each clone (by index); empty when missing. */
  inputs?: (index: number) => Uint8Array;
  prefetch?: boolean;
  mode?: ForkMode;
  initInput?: Uint8Array;
  timeoutMs?: number;
  onResult?: (r: CloneResult) => void;
}

export interface ForkOutcome {
  /** When the fork requests went out, ms since the epoch (hosts' ForkPhases.receivedAt are on the same clock on one machine). */
  sentAt: number;
  /** From sending the fork requests to every host saying its clones run. */
  runningMs: number;
  /** By host id: from sending the fork requests to that host's answer arriving here. */
  repliedMs: Record<string, number>;
  /** From sending the fork requests to the last clone result. */
  doneMs: number;
  replies: ForkStarted[];
  /** By clone index. */
  results: CloneResult[];
}

/** Forks clones on several hosts at once and waits for all of them (tests and benchmarks; jobs gather theirs from the results stream). */
export async function forkAcross(nc: NatsConnection, opts: ForkOptions): Promise<ForkOutcome> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const inbox = await ResultInbox.open(nc, 'fork', opts.count, opts.onResult);
  const t0 = performance.now();
  const repliedMs: Record<string, number> = {};
  try {
    const replies = await Promise.all(
      [...opts.placement].map(([hostId, indices]) => requestFork(nc, hostId, {
        requestId: opts.requestId,
        descriptor: opts.descriptor,
        clones: indices.map((index) => ({ index, input: opts.inputs?.(index) ?? new Uint8Array(0) })),
        count: opts.count,
        resultSubject: inbox.subject,
        prefetch: opts.prefetch ?? false,
        mode: opts.mode,
        initInput: opts.initInput,
      }, { timeoutMs }).then((reply) => {
        repliedMs[hostId] = performance.now() - t0;
        return reply;
      })),
    );
    const runningMs = performance.now() - t0;
    const results = await inbox.all(timeoutMs);
    return { sentAt: performance.timeOrigin + t0, runningMs, repliedMs, doneMs: performance.now() - t0, replies, results };
  } finally {
    inbox.close();
  }
}

/**
 * Makes a snapshot ready on hosts before its clones are asked for, so that a
 * fork there starts at once: a host without the parent adopts it (page
 * cache, the chunks the pointer globals point into asked for, the clone
 * module loaded in every guest thread). It is a fork request with no clones;
 * each host answers once the snapshot is ready there. Send it when the
 * snapshot is made and its hosts are known. Resolves with each host's time to
 * be ready (`ForkPhases.preparedMs`); throws the first host's refusal.
 */
export async function adoptAhead(nc: NatsConnection, hostIds: string[], descriptor: Uint8Array, opts: { requestId: string; mode?: ForkMode; prefetch?: boolean; timeoutMs?: number }): Promise<ForkStarted[]> {
  // Nothing is ever published there: no clone runs.
  const resultSubject = createInbox('flurry.fork');
  return Promise.all(hostIds.map((hostId) => requestFork(nc, hostId, {
    requestId: opts.requestId, descriptor, clones: [], count: 0, resultSubject, prefetch: opts.prefetch ?? false, mode: opts.mode,
  }, { timeoutMs: opts.timeoutMs })));
}

/** Spreads `count` clone indices over hosts round-robin. */
export function roundRobin(hostIds: string[], count: number): Map<string, number[]> {
  const m = new Map<string, number[]>(hostIds.map((h) => [h, []]));
  for (let i = 0; i < count; i++) m.get(hostIds[i % hostIds.length])!.push(i);
  return m;
}
