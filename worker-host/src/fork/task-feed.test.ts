import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { decode, encode, TASK_RESULT_LAG_MS, unframeOutputs, type CloneResult, type ForkRequest, type TaskReply, type TaskRequest } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ResultDelivery } from './result-delivery.js';
import { TaskFeed } from './task-feed.js';

/**
 * A feed whose results are recorded (first task, tasks' outputs) instead of published, and its asks
 * (answered by `answer`, by default `end`).
 */
function feed(outcome: Awaited<ReturnType<ResultDelivery['finishTasks']>> = 'stored', answer: (ask: TaskRequest) => TaskReply = () => ({ ok: true, tasks: [], end: true })) {
  const sent: { first: number; outputs: number[]; runMs: number[] }[] = [];
  const asks: TaskRequest[] = [];
  const nc = { request: async (_s: string, data: Uint8Array) => {
    const ask = decode<TaskRequest>(data);
    asks.push(ask);
    return { data: encode(answer(ask)) };
  } } as unknown as NatsConnection;
  const results = {
    finishTasks: async (_req: ForkRequest, first: number, r: CloneResult & { taskRunMs: number[] }) => {
      sent.push({ first, outputs: unframeOutputs(r.output!, r.taskRunMs.length)!.map((o) => o[0]), runMs: r.taskRunMs });
      expect(r.index).toBe(first);
      return outcome;
    },
  } as unknown as ResultDelivery;
  const req = { requestId: 'job.1.x', tasks: { count: 100, subject: 's' } } as ForkRequest & { tasks: NonNullable<ForkRequest['tasks']> };
  const f = new TaskFeed({ nc, hostId: 'h', results, log: pino({ level: 'silent' }) }, req, 0, () => undefined);
  return { f, sent, asks };
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

  it('ahead - the first batch is asked for as the clone starts and the next as a batch\'s last task starts: the guest\'s ask finds it there, and the finished tasks wait to go on in one run', async () => {
    const batches = [[0], [1, 2], [3]];
    const { f, asks, sent } = feed('stored', (ask) => ({ ok: true, tasks: ask.ahead ? batches.shift() ?? [] : [], end: !ask.ahead }));
    f.askAhead();
    expect(await f.next()).toEqual([0]);
    expect(asks.length).toBe(1);
    f.started(0);
    expect(asks.length).toBe(2);
    f.done(0, out(0), 1);
    expect(await f.next()).toEqual([1, 2]);
    // Only the batch's last task asks ahead.
    f.started(1);
    expect(asks.length).toBe(2);
    f.done(1, out(1), 1);
    f.started(2);
    f.done(2, out(2), 1);
    expect(await f.next()).toEqual([3]);
    expect(asks.every((a) => a.ahead)).toBe(true);
    // The batches came ahead: tasks 0..2 are held (for the timer) to go with the next ones.
    expect(sent).toEqual([]);
    // Nothing more ahead: the finished run is sent, then the guest's own ask goes out, and it says when to end.
    f.started(3);
    f.done(3, out(3), 1);
    expect(await f.next()).toEqual([]);
    expect(sent).toEqual([{ first: 0, outputs: [0, 1, 2, 3], runMs: [1, 1, 1, 1] }]);
    expect(asks.at(-1)!.ahead).toBeUndefined();
  });

  it('ahead - a failure of the last task is reported with another ask ahead as the next batch begins, not a batch later', async () => {
    const batches = [[0], [1], [2]];
    const { f, asks } = feed('stored', (ask) => ({ ok: true, tasks: ask.ahead ? batches.shift() ?? [] : [], end: !ask.ahead }));
    f.askAhead();
    expect(await f.next()).toEqual([0]);
    f.started(0);
    f.failed(0, { code: 'guest_trap', message: 'trap' });
    expect(await f.next()).toEqual([1]);
    expect(asks.length).toBe(3);
    expect(asks[2]).toMatchObject({ ahead: true, failed: [{ task: 0 }] });
    // That ask's batch is the next one: task 1's start asks no more.
    f.started(1);
    expect(asks.length).toBe(3);
    expect(await f.next()).toEqual([2]);
  });
});
