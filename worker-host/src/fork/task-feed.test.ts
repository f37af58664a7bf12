import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { decode, encode, TASK_RESULT_LAG_MS, unframeOutputs, type CloneResult, type ForkRequest, type TaskReply, type TaskRequest } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ResultDelivery } from './result-delivery.js';
import { BATCH_MS, TaskFeed } from './task-feed.js';

/**
 * A feed whose results are recorded (first task, tasks' outputs) instead of published, and its asks
 * (answered by `answer`, by default `end`).
 */
function feed(
  outcome: Awaited<ReturnType<ResultDelivery['finishTasks']>> = 'stored',
  answer: (ask: TaskRequest) => TaskReply = () => ({ ok: true, tasks: [], end: true }),
  keep?: (first: number, count: number, framed: Uint8Array) => void,
  minOutputBytes?: number,
) {
  const sent: { first: number; outputs: number[]; runMs: number[] }[] = [];
  const asks: TaskRequest[] = [];
  const nc = { request: async (_s: string, data: Uint8Array) => {
    const ask = decode<TaskRequest>(data);
    asks.push(ask);
    return { data: encode(answer(ask)) };
  } } as unknown as NatsConnection;
  const published: Uint8Array[] = [];
  const results = {
    finishTasks: async (_req: ForkRequest, first: number, r: CloneResult & { taskRunMs: number[] }) => {
      published.push(r.output!);
      sent.push({ first, outputs: unframeOutputs(r.output!, r.taskRunMs.length)!.map((o) => o[0]), runMs: r.taskRunMs });
      expect(r.index).toBe(first);
      return outcome;
    },
  } as unknown as ResultDelivery;
  const req = {
    requestId: 'job.1.x', tasks: { count: 100, subject: 's' }, ...(minOutputBytes !== undefined && { objects: { store: 'o', outputPrefix: 'p', minOutputBytes } }),
  } as ForkRequest & { tasks: NonNullable<ForkRequest['tasks']> };
  const f = new TaskFeed({ nc, hostId: 'h', results, log: pino({ level: 'silent' }) }, req, 0, () => undefined, keep);
  return { f, sent, asks, published };
}

const out = (x: number) => new Uint8Array([x]);

describe('task feed', () => {
  it('runs - consecutive finished tasks go in one message, framed per task; a gap starts another', () => {
    const { f, sent } = feed();
    f.done(3, out(3), 1);
    f.done(4, out(4), 2);
    f.done(5, out(5), 3);
    expect(sent).toEqual([]);
    f.done(9, out(9), 4);
    expect(sent).toEqual([{ first: 3, outputs: [3, 4, 5], runMs: [1, 2, 3] }]);
    f.sendFinished();
    expect(sent[1]).toEqual({ first: 9, outputs: [9], runMs: [4] });
    f.sendFinished();
    expect(sent.length).toBe(2);
  });

  it('kept - with a keeper (this host runs the reduce), each run is kept as the very bytes published; not one that goes to the object store', () => {
    const kept: { first: number; count: number; framed: Uint8Array }[] = [];
    const { f, published } = feed('stored', undefined, (first, count, framed) => kept.push({ first, count, framed }), 16);
    f.done(0, out(0), 1);
    f.done(1, out(1), 1);
    f.sendFinished();
    expect(kept).toEqual([{ first: 0, count: 2, framed: published[0] }]);
    // Two outputs of 5 bytes framed: 18 bytes, at least minOutputBytes (its result names an object).
    f.done(2, new Uint8Array(5), 1);
    f.done(3, new Uint8Array(5), 1);
    f.sendFinished();
    expect(published.length).toBe(2);
    expect(kept.length).toBe(1);
  });

  it('lag - a finished task waits at most TASK_RESULT_LAG_MS for the next', async () => {
    vi.useFakeTimers();
    try {
      const { f, sent } = feed();
      f.done(0, out(0), 1);
      vi.advanceTimersByTime(TASK_RESULT_LAG_MS - 1);
      f.done(1, out(1), 1);
      expect(sent).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(sent).toEqual([{ first: 0, outputs: [0, 1], runMs: [1, 1] }]);
      // The timer starts again with the next finished task.
      f.done(2, out(2), 1);
      vi.advanceTimersByTime(TASK_RESULT_LAG_MS);
      expect(sent[1]).toEqual({ first: 2, outputs: [2], runMs: [1] });
    } finally {
      vi.useRealTimers();
    }
  });

  it('size - outputs past 256 KiB together go in another message', () => {
    const { f, sent } = feed();
    const big = new Uint8Array(200 * 1024);
    f.done(0, big, 1);
    f.done(1, big, 1);
    expect(sent.map((s) => s.first)).toEqual([0]);
  });

  it('ask - what is finished is sent before the ask; tasks whose message was not stored are reported failed at the next, so that they run again', async () => {
    const { f, sent, asks } = feed({ error: { code: 'unavailable', message: 'no stream' } });
    f.done(0, out(0), 1);
    f.done(1, out(1), 1);
    expect(await f.next()).toEqual([]);
    expect(sent.map((s) => s.first)).toEqual([0]);
    expect(asks[0].failed).toEqual([]);
    await f.next();
    expect(asks[1].failed.map((x) => x.task)).toEqual([0, 1]);
  });

  it('range - run from its front in batches of about BATCH_MS, never more than half of what is left, with no ask until the last batch goes out', async () => {
    const { f, asks, sent } = feed('stored', (ask) => (ask.ahead ? { ok: true, tasks: [], ...(asks.length === 1 && { range: { lo: 0, hi: 30 } }), end: false } : { ok: true, tasks: [], end: true }));
    f.askAhead();
    // Nothing known of the task times yet: one task.
    expect(await f.next()).toEqual([0]);
    f.started(0);
    f.done(0, out(0), BATCH_MS / 10);
    const batches: number[][] = [];
    for (let b = await f.next(); b.length > 0; b = await f.next()) {
      batches.push(b);
      for (const t of b) {
        f.started(t);
        f.done(t, out(t), BATCH_MS / 10);
      }
    }
    expect(batches.map((b) => b.length)).toEqual([10, 10, 5, 2, 1, 1]);
    expect(batches.flat()).toEqual(Array.from({ length: 29 }, (_, i) => i + 1));
    // Asked ahead as it started, again as the last batch went out (with the range it ran), then the guest's own ask.
    expect(asks.map((a) => [a.ahead, a.range])).toEqual([[true, undefined], [true, { lo: 0, hi: 30 }], [undefined, { lo: 0, hi: 30 }]]);
    // The run went on across batches: sent once, before the guest's own ask.
    expect(sent.map((s) => [s.first, s.outputs.length])).toEqual([[0, 30]]);
  });

  it('split - the back half of what the range has not handed out goes; a split of another range is refused; with nothing left, nothing goes', async () => {
    const { f } = feed('stored', (ask) => ({ ok: true, tasks: [], ...(ask.ahead && !ask.range && { range: { lo: 10, hi: 20 } }), end: !ask.ahead }));
    f.askAhead();
    expect(await f.next()).toEqual([10]);
    f.done(10, out(0), BATCH_MS);
    expect(await f.next()).toEqual([11]);
    // 12..19 not handed out: 16..19 go.
    expect(f.split(10)).toEqual({ ok: true, hi: 16 });
    expect(f.split(12)).toMatchObject({ ok: false, error: { code: 'conflict' } });
    const rest: number[] = [];
    for (let b = await f.next(); b.length > 0; b = await f.next()) rest.push(...b);
    expect(rest).toEqual([12, 13, 14, 15]);
    expect(f.split(10)).toEqual({ ok: true, hi: 16 });
  });

  it('split of a last task - the one task not handed out goes to the idle clone (rounded up), not after the owner\'s running one', async () => {
    const { f } = feed('stored', (ask) => ({ ok: true, tasks: [], ...(ask.ahead && !ask.range && { range: { lo: 10, hi: 13 } }), end: !ask.ahead }));
    f.askAhead();
    expect(await f.next()).toEqual([10]);
    f.done(10, out(0), BATCH_MS);
    expect(await f.next()).toEqual([11]);
    // 12 not handed out: it goes.
    expect(f.split(10)).toEqual({ ok: true, hi: 12 });
    f.done(11, out(1), BATCH_MS);
    expect(await f.next()).toEqual([]);
  });

  it('failures - a failed task is reported at once, in an ask that takes nothing while the range has tasks left', async () => {
    const { f, asks } = feed('stored', (ask) => ({ ok: true, tasks: [], ...(ask.ahead && !ask.range && { range: { lo: 0, hi: 4 } }), end: !ask.ahead }));
    f.askAhead();
    expect(await f.next()).toEqual([0]);
    f.started(0);
    f.failed(0, { code: 'guest_trap', message: 'trap' });
    expect(asks.length).toBe(2);
    expect(asks[1]).toMatchObject({ ahead: true, report: true, failed: [{ task: 0 }], range: { lo: 0, hi: 4 } });
    // Its answer (nothing) changes nothing: the range goes on.
    expect(await f.next()).toEqual([1]);
    expect(asks.length).toBe(2);
  });
});
