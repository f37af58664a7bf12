import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { decode, encode, frameReduceInput, type CloneResult, type StoredJob, type TaskRequest, type TaskSplitReply, type TaskSplitRequest } from '@flurry/core';
import type { NatsConnection } from '@nats-io/transport-node';
import { CloneAttempts } from './clone-attempts.js';
import { JobTasks, type TasksOwner } from './job-tasks.js';
import type { JobStore } from './job-store.js';

/** A task job of `clones` clones, attempt `r<i>` of clone i running on `h<i>`, over a store that records what it is asked. */
function taskJob(total: number, clones: number) {
  const stored: StoredJob = {
    record: {
      id: 'job-1', tenant: 't', function: 'f', digest: 'd', clones, state: 'running', createdAt: 0, updatedAt: 0,
      counts: { done: 0, failed: 0, running: 0, pending: 0 }, clonesDetail: Array.from({ length: clones }, (_, index) => ({ index, state: 'running', attempts: 1 })), pagesFetched: 0,
    },
  };
  const asked = { known: [] as (Uint8Array | undefined)[], dropped: [] as unknown[][] };
  const store = {
    taskOutputs: async (_t: string, _j: string, count: number, _m: string, known: (Uint8Array | undefined)[]) => {
      asked.known = [...known];
      return Array.from({ length: count }, (_, i) => known[i] ?? new Uint8Array([0xee]));
    },
    dropResult: async (...args: unknown[]) => void asked.dropped.push(args),
  } as unknown as JobStore;
  const owner: TasksOwner = { stored, log: pino({ level: 'silent' }), store, over: () => false, emit: () => undefined, changed: () => undefined, progressed: () => undefined, wake: () => undefined };
  const attempts = new CloneAttempts({ ...owner, retries: 0 }, new Map());
  const tasks = new JobTasks(owner, attempts, total, 0, 60_000, true);
  attempts.tasks = tasks;
  for (let i = 0; i < clones; i++) attempts.start(i, { host: `h${i}`, requestId: `r${i}`, deadline: Date.now() + 60_000 });
  /** Attempt `attempt`'s results of tasks `first`.. (one per output), framed in one message; `fields` replace its own. */
  const result = (first: number, attempt: number, outputs: Uint8Array[], fields: Partial<CloneResult> = {}): CloneResult => ({
    requestId: `r${attempt}`, hostId: `h${attempt}`, index: first, ok: true, output: frameReduceInput(outputs), taskRunMs: outputs.map(() => 1),
    startMs: 0, runMs: 1, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0, ...fields,
  });
  /** Attempt `attempt`'s ask, with nothing left to run (unless `fields` say otherwise). */
  const ask = (attempt: number, fields: Partial<TaskRequest> = {}) => tasks.onRequest({ requestId: `r${attempt}`, hostId: `h${attempt}`, index: attempt, failed: [], ...fields });
  return { tasks, attempts, asked, result, ask, stored };
}

/** Whether `p` is answered before a timer that fires well inside the task server's hold (timers fire in the order they are due). */
async function answeredYet(p: Promise<unknown>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20))]);
}

describe('task server', () => {
  it('reduce input - outputs heard in one run come from memory; a task heard in two runs, or kept as an object, is read from the stream', async () => {
    const { tasks, asked, result } = taskJob(5, 2);
    const b = (x: number) => new Uint8Array([x]);
    tasks.onResult(result(0, 0, [b(1), b(2)]));
    tasks.onResult(result(2, 1, [b(3)], { output: undefined, outputObject: 't/job-1/out/2-2/r1' }));
    tasks.onResult(result(3, 0, [b(4), b(5)]));
    // The same message heard again changes nothing; another run holding task 4 (a backup) makes it the stream's to say.
    tasks.onResult(result(3, 0, [b(4), b(5)]));
    expect(tasks.ledger.counts().duplicates).toBe(0);
    tasks.onResult(result(4, 1, [b(6)]));
    expect(tasks.ledger.counts().duplicates).toBe(1);
    const outputs = await tasks.outputsInOrder();
    expect(asked.known).toEqual([b(1), b(2), undefined, b(4), undefined]);
    expect(outputs.slice(0, 2)).toEqual([b(1), b(2)]);
    expect(tasks.ledger.allDone).toBe(true);
    expect(asked.dropped).toEqual([]);
  });

  it('kept runs - the runs the reduce\'s host kept are named for it, whole and in task order; not another host\'s, not an attempt not asked to keep, not a run sharing a task with another', () => {
    const { tasks, result } = taskJob(10, 2);
    const b = (x: number) => new Uint8Array([x]);
    tasks.outputsKeptOn('r0', 'h0');
    tasks.onResult(result(4, 0, [b(4), b(5)]));
    tasks.onResult(result(0, 0, [b(0), b(1)]));
    tasks.onResult(result(2, 1, [b(2), b(3)]));
    tasks.onResult(result(6, 0, [b(6), b(7)]));
    // A backup of task 7 on h1: task 7 is the stream's to say, so the run 6-7 is sent, not named.
    tasks.onResult(result(7, 1, [b(7)]));
    tasks.onResult(result(8, 0, [b(8), b(9)]));
    expect(tasks.keptRunsOn('h0')).toEqual([{ requestId: 'r0', first: 0, count: 2 }, { requestId: 'r0', first: 4, count: 2 }, { requestId: 'r0', first: 8, count: 2 }]);
    // h1 was not asked to keep anything; no host but h0 holds r0's runs.
    expect(tasks.keptRunsOn('h1')).toEqual([]);
    // Run again (heard, but missing from the stream): no longer named.
    tasks.rerun([4]);
    expect(tasks.keptRunsOn('h0').map((r) => r.first)).toEqual([0, 8]);
  });

  it('refused - a run not framed one output per task, past the last task, naming another\'s object or from an attempt not sent is not counted', () => {
    const { tasks, asked, result } = taskJob(4, 2);
    tasks.onResult(result(0, 0, [new Uint8Array([1])], { taskRunMs: [1, 1] }));
    tasks.onResult(result(0, 0, [new Uint8Array([1]), new Uint8Array([2])], { output: new Uint8Array([9, 0, 0, 0]), taskRunMs: [1, 1] }));
    tasks.onResult(result(1, 0, [], { output: undefined, outputObject: 't/job-1/out/1-1/r1', taskRunMs: [1] }));
    tasks.onResult(result(0, 0, [new Uint8Array([1])], { requestId: 'r-forged' }));
    tasks.onResult(result(0, 0, [new Uint8Array([1])], { hostId: 'h1' }));
    expect(asked.dropped).toEqual([['t', 'job-1', '0-1', 'r0'], ['t', 'job-1', '0-1', 'r0'], ['t', 'job-1', '1-1', 'r0'], ['t', 'job-1', '0-0', 'r-forged'], ['t', 'job-1', '0-0', 'r0']]);
    // Past the last task: not this job's at all.
    tasks.onResult(result(3, 0, [new Uint8Array([1]), new Uint8Array([2])]));
    expect(tasks.ledger.counts().done).toBe(0);
  });

  it('clones - another clone is wanted only while a task is pending; a lost attempt\'s tasks make it wanted again', async () => {
    const { tasks, attempts, ask } = taskJob(2, 3);
    expect(tasks.wantsClones).toBe(true);
    expect(await ask(0)).toMatchObject({ tasks: [], range: { lo: 0, hi: 1 } });
    expect(await ask(1)).toMatchObject({ tasks: [], range: { lo: 1, hi: 2 } });
    expect(tasks.wantsClones).toBe(false);
    expect(tasks.ledger.holders(0)).toEqual([{ requestId: 'r0', index: 0 }]);
    attempts.end(0);
    expect(tasks.wantsClones).toBe(true);
  });

  it('held asks - an ask with nothing to take waits, and is answered the moment a task is given back or every task is done', async () => {
    const { tasks, attempts, ask, result } = taskJob(2, 3);
    expect(await ask(0)).toMatchObject({ range: { lo: 0, hi: 1 } });
    expect(await ask(1)).toMatchObject({ range: { lo: 1, hi: 2 } });
    const second = ask(2);
    expect(await answeredYet(second)).toBe(false);
    attempts.end(0);
    expect(await second).toEqual({ ok: true, tasks: [], range: { lo: 0, hi: 1 }, end: false });
    const third = ask(1, { range: { lo: 1, hi: 2 } });
    expect(await answeredYet(third)).toBe(false);
    tasks.onResult(result(1, 1, [new Uint8Array([1])]));
    tasks.onResult(result(0, 2, [new Uint8Array([0])]));
    expect(await third).toEqual({ ok: true, tasks: [], end: true });
    expect(tasks.settled).toBe(true);
  });

  it('ahead - an ask ahead takes a range at once, is never held and never ends the clone; its ask after that does', async () => {
    const { tasks, ask, result, stored } = taskJob(2, 2);
    expect(await ask(0, { ahead: true })).toEqual({ ok: true, tasks: [], range: { lo: 0, hi: 1 }, end: false });
    expect(await ask(0, { ahead: true, range: { lo: 0, hi: 1 } })).toEqual({ ok: true, tasks: [], range: { lo: 1, hi: 2 }, end: false });
    // Nothing pending: answered at once, where the same ask without `ahead` is held.
    expect(await ask(1, { ahead: true })).toEqual({ ok: true, tasks: [], end: false });
    const held = ask(1);
    expect(await answeredYet(held)).toBe(false);
    tasks.onResult(result(0, 0, [new Uint8Array([0]), new Uint8Array([1])]));
    expect(tasks.settled).toBe(true);
    expect(await held).toEqual({ ok: true, tasks: [], end: true });
    expect(await ask(0, { ahead: true })).toEqual({ ok: true, tasks: [], end: false });
    expect(stored.record.clonesDetail[0].state).toBe('running');
    expect(await ask(0)).toEqual({ ok: true, tasks: [], end: true });
    expect(stored.record.clonesDetail[0].state).toBe('done');
    // An attempt that is not current is not told to end by an ask ahead either.
    expect(await tasks.onRequest({ requestId: 'r-old', hostId: 'h1', index: 1, failed: [], ahead: true })).toEqual({ ok: true, tasks: [], end: false });
  });

  it('split - a dry clone gets the back of the largest range, where the owner\'s host says it ends now; a host that refuses gives nothing', async () => {
    const { tasks, ask, result } = taskJob(40, 2);
    const splits: { subject: string; req: TaskSplitRequest }[] = [];
    let answer: TaskSplitReply = { ok: true, hi: 12 };
    const nc = {
      subscribe: () => ({ unsubscribe: () => undefined }),
      request: async (subject: string, data: Uint8Array) => {
        splits.push({ subject, req: decode<TaskSplitRequest>(data) });
        return { data: encode(answer) };
      },
    } as unknown as NatsConnection;
    tasks.serve(nc);
    expect(await ask(0)).toMatchObject({ range: { lo: 0, hi: 20 } });
    expect(await ask(1)).toMatchObject({ range: { lo: 20, hi: 40 } });
    tasks.onResult(result(20, 1, Array.from({ length: 20 }, (_, i) => new Uint8Array([i]))));
    expect(await ask(1, { range: { lo: 20, hi: 40 } })).toEqual({ ok: true, tasks: [], range: { lo: 12, hi: 20 }, end: false });
    expect(splits).toEqual([{ subject: 'flurry.host.h0.split', req: { requestId: 'r0', index: 0, lo: 0 } }]);
    expect(tasks.ledger.holders(15)).toEqual([{ requestId: 'r1', index: 1 }]);
    // Clone 0 dry too, clone 1's 12..19 left: its host refuses (its range was replaced): nothing, asked once.
    answer = { ok: false, error: { code: 'conflict', message: 'no such range' } };
    tasks.onResult(result(0, 0, Array.from({ length: 12 }, (_, i) => new Uint8Array([i]))));
    expect(await ask(0, { ahead: true, range: { lo: 0, hi: 12 } })).toEqual({ ok: true, tasks: [], end: false });
    expect(splits.map((s) => s.req)).toEqual([{ requestId: 'r0', index: 0, lo: 0 }, { requestId: 'r1', index: 1, lo: 12 }]);
  });

  it('report - an ask that only reports failures takes nothing, and leaves the clone its range', async () => {
    const { tasks, ask } = taskJob(4, 2);
    expect(await ask(0)).toMatchObject({ range: { lo: 0, hi: 2 } });
    const failed = [{ task: 1, error: { code: 'guest_trap' as const, message: 'trap' } }];
    expect(await ask(0, { ahead: true, report: true, failed })).toEqual({ ok: true, tasks: [], end: false });
    expect(tasks.ledger.counts().failures).toBe(1);
    expect(tasks.ledger.holds({ requestId: 'r0', index: 0 }, 0)).toBe(true);
  });

  it('start - the asks of a clone carry its start, kept in clonesDetail; an attempt that is not current changes nothing', async () => {
    const { ask, stored, tasks } = taskJob(4, 2);
    await ask(0, { startMs: 12.5 });
    expect(stored.record.clonesDetail[0].startMs).toBe(12.5);
    expect(stored.record.clonesDetail[1].startMs).toBeUndefined();
    await tasks.onRequest({ requestId: 'r-old', hostId: 'h1', index: 1, failed: [], startMs: 99 });
    expect(stored.record.clonesDetail[1].startMs).toBeUndefined();
  });

  it('final - once a task has failed past its retries, later failures (a backup, another clone) are not counted', async () => {
    const { tasks, ask } = taskJob(4, 2);
    expect(await ask(0)).toMatchObject({ range: { lo: 0, hi: 2 } });
    // Clone 1's range is the second half.
    expect(await ask(1)).toMatchObject({ range: { lo: 2, hi: 4 } });
    const fail = (attempt: number, task: number) => ask(attempt, { report: true, failed: [{ task, error: { code: 'guest_trap', message: `trap ${task}` } }] });
    await fail(0, 0);
    await fail(1, 2);
    expect(tasks.failure()).toEqual({ code: 'guest_trap', message: 'task 0 failed 1 times: trap 0' });
    expect(tasks.ledger.counts().failures).toBe(1);
  });
});
