/**
 * Driving a fork from outside the hosts: ask one host to snapshot a warm
 * parent, send each host its share of clone indices, and gather every
 * clone's result. The job coordinator, the tests and the benchmarks use it.
 */
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import { encode } from './codec.js';
import { decodeChecked, decodeOrRefuse } from './checked-decode.js';
import { FlurryError } from './errors.js';
import { Subjects, type CloneResult, type ForkMode, type ForkReply, type ForkRequest, type ReleaseReply, type SnapshotReply, type SnapshotRequest } from './protocol.js';

export type SnapshotMade = Extract<SnapshotReply, { ok: true }>;

export async function requestSnapshot(nc: NatsConnection, hostId: string, req: SnapshotRequest, timeoutMs = 120_000): Promise<SnapshotMade> {
  const reply = decodeOrRefuse('SnapshotReply', (await nc.request(Subjects.snapshot(hostId), encode(req), { timeout: timeoutMs })).data);
  if (!reply.ok) throw FlurryError.fromWire(reply.error);
  return reply;
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
  /** From sending the fork requests to every host saying its clones run. */
  runningMs: number;
  /** From sending the fork requests to the last clone result. */
  doneMs: number;
  replies: ForkReply[];
  /** By clone index. */
  results: CloneResult[];
}

/** Forks clones on several hosts at once and waits for all of them. */
export async function forkAcross(nc: NatsConnection, opts: ForkOptions): Promise<ForkOutcome> {
  const resultSubject = createInbox('flurry.fork');
  const results: CloneResult[] = [];
  let left = opts.count;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const sub = nc.subscribe(resultSubject, {
    callback: (_e, msg) => {
      const r = decodeChecked('CloneResult', msg.data, msg.subject);
      if (!r || r.index >= opts.count || results[r.index]) return; // a clone that ran twice counts once
      results[r.index] = r;
      opts.onResult?.(r);
      if (--left === 0) resolveDone();
    },
  });
  await nc.flush();
  const t0 = performance.now();
  try {
    const replies = await Promise.all(
      [...opts.placement].map(async ([hostId, indices]) => {
        const req: ForkRequest = {
          requestId: opts.requestId,
          descriptor: opts.descriptor,
          clones: indices.map((index) => ({ index, input: opts.inputs?.(index) ?? new Uint8Array(0) })),
          count: opts.count,
          resultSubject,
          prefetch: opts.prefetch ?? false,
          mode: opts.mode,
          initInput: opts.initInput,
        };
        return decodeOrRefuse('ForkReply', (await nc.request(Subjects.fork(hostId), encode(req), { timeout: opts.timeoutMs ?? 120_000 })).data);
      }),
    );
    const runningMs = performance.now() - t0;
    const failed = replies.find((r) => !r.ok);
    if (failed && !failed.ok) throw FlurryError.fromWire(failed.error);
    const timeout = new Promise<never>((_, reject) => {
      const t = setTimeout(() => reject(new FlurryError('timeout', `clones did not all finish within ${opts.timeoutMs ?? 120_000} ms (${left} left)`)), opts.timeoutMs ?? 120_000);
      void done.then(() => clearTimeout(t));
    });
    await Promise.race([done, timeout]);
    return { runningMs, doneMs: performance.now() - t0, replies, results };
  } finally {
    sub.unsubscribe();
  }
}

/** Tells hosts to drop a snapshot (the parent's memory server, clones' caches) and returns what each moved. */
export async function releaseSnapshot(nc: NatsConnection, hostIds: string[], tenant: string, snapshotId: string): Promise<ReleaseReply[]> {
  return Promise.all(hostIds.map(async (h) => decodeOrRefuse('ReleaseReply', (await nc.request(Subjects.release(h), encode({ tenant, snapshotId }), { timeout: 60_000 })).data)));
}

/** Spreads `count` clone indices over hosts round-robin. */
export function roundRobin(hostIds: string[], count: number): Map<string, number[]> {
  const m = new Map<string, number[]>(hostIds.map((h) => [h, []]));
  for (let i = 0; i < count; i++) m.get(hostIds[i % hostIds.length])!.push(i);
  return m;
}
