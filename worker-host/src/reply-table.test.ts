import { describe, expect, it } from 'vitest';
import type { InvokeReply } from '@flurry/core';
import { ReplyTable, replyBytes } from './reply-table.js';

const ok = (text: string): InvokeReply => ({ ok: true, status: 200, headers: [['content-type', 'text/plain']], body: new TextEncoder().encode(text), hostId: 'host-1', durationMs: 1 });
const limits = { keepMs: 60_000, maxBytes: 1024 * 1024, maxReplies: 1000 };

/** A request's work that counts its runs and answers when `finish` is called. */
function counted(reply: InvokeReply) {
  let finish = () => {};
  const w = { runs: 0, finish: () => finish() };
  const work = () => {
    w.runs++;
    return new Promise<InvokeReply>((resolve) => (finish = () => resolve(reply)));
  };
  return { w, work };
}

describe('ReplyTable', () => {
  it('the same id - one run; the second gets the first reply', async () => {
    const table = new ReplyTable(limits);
    let runs = 0;
    const work = async () => ok(`run ${++runs}`);
    const first = await table.run('inst-1', 'req-1', work);
    const again = await table.run('inst-1', 'req-1', work);
    expect(runs).toBe(1);
    expect(again).toBe(first);
    expect(new TextDecoder().decode((again as Extract<InvokeReply, { ok: true }>).body)).toBe('run 1');
  });

  it('another id, or the same id on another instance - runs', async () => {
    const table = new ReplyTable(limits);
    let runs = 0;
    const work = async () => ok(`run ${++runs}`);
    await table.run('inst-1', 'req-1', work);
    await table.run('inst-1', 'req-2', work);
    await table.run('inst-2', 'req-1', work);
    expect(runs).toBe(3);
  });

  it('a duplicate while the first still runs - waits for that run, no second one', async () => {
    const table = new ReplyTable(limits);
    const { w, work } = counted(ok('once'));
    const first = table.run('inst-1', 'req-1', work);
    const second = table.run('inst-1', 'req-1', work);
    expect(table.has('inst-1', 'req-1')).toBe(true);
    w.finish();
    expect(await second).toBe(await first);
    expect(w.runs).toBe(1);
  });

  it('a failed run - its reply is kept too, not run again', async () => {
    const table = new ReplyTable(limits);
    let runs = 0;
    const failed: InvokeReply = { ok: false, error: { code: 'guest_trap', message: 'unreachable' }, hostId: 'host-1' };
    const work = async () => (runs++, failed);
    await table.run('inst-1', 'req-1', work);
    expect(await table.run('inst-1', 'req-1', work)).toEqual(failed);
    expect(runs).toBe(1);
  });

  it('a work that throws - nothing kept, the next try runs', async () => {
    const table = new ReplyTable(limits);
    await expect(table.run('inst-1', 'req-1', async () => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    expect(table.has('inst-1', 'req-1')).toBe(false);
    expect(await table.run('inst-1', 'req-1', async () => ok('second'))).toEqual(ok('second'));
  });

  it('eviction by age - a reply older than keepMs is gone, its id runs again', async () => {
    const table = new ReplyTable({ ...limits, keepMs: 40 });
    let runs = 0;
    const work = async () => ok(`run ${++runs}`);
    await table.run('inst-1', 'req-1', work);
    await new Promise((r) => setTimeout(r, 80));
    expect(table.has('inst-1', 'req-1')).toBe(false);
    await table.run('inst-1', 'req-1', work);
    expect(runs).toBe(2);
  });

  it('eviction by bytes - the oldest replies go first beyond the budget', async () => {
    const one = replyBytes(ok('x'.repeat(1000)));
    const table = new ReplyTable({ ...limits, maxBytes: 3 * one });
    for (let i = 1; i <= 5; i++) await table.run('inst-1', `req-${i}`, async () => ok('x'.repeat(1000)));
    expect([1, 2, 3, 4, 5].map((i) => table.has('inst-1', `req-${i}`))).toEqual([false, false, true, true, true]);
    expect(table.size).toEqual({ replies: 3, bytes: 3 * one });
  });

  it('eviction by count - the oldest go first beyond maxReplies; a run in progress is never evicted', async () => {
    const table = new ReplyTable({ ...limits, maxReplies: 2 });
    const { w, work } = counted(ok('slow'));
    const slow = table.run('inst-1', 'slow', work);
    for (let i = 1; i <= 4; i++) await table.run('inst-1', `req-${i}`, async () => ok('fast'));
    expect([1, 2, 3, 4].map((i) => table.has('inst-1', `req-${i}`))).toEqual([false, false, true, true]);
    expect(table.has('inst-1', 'slow')).toBe(true);
    void table.run('inst-1', 'slow', work);
    w.finish();
    await slow;
    expect(w.runs).toBe(1);
  });

  it('a reply larger than the whole byte budget - not kept', async () => {
    const table = new ReplyTable({ ...limits, maxBytes: 100 });
    await table.run('inst-1', 'big', async () => ok('x'.repeat(1000)));
    expect(table.has('inst-1', 'big')).toBe(false);
  });

  it('export and import - another table answers the requests this one ran, newest first within the bytes given, with their age', async () => {
    const source = new ReplyTable(limits);
    for (let i = 1; i <= 3; i++) await source.run('inst-1', `req-${i}`, async () => ok(`reply ${i}`));
    await source.run('inst-2', 'other', async () => ok('not this instance'));
    const all = source.exportSince('inst-1', 1024 * 1024, 0).replies;
    expect(all.map((r) => r.requestId)).toEqual(['req-3', 'req-2', 'req-1']);
    for (const r of all) expect(r.ageMs).toBeLessThan(1000);
    expect(source.exportSince('inst-1', replyBytes(ok('reply 3')) + replyBytes(ok('reply 2')), 0).replies.map((r) => r.requestId)).toEqual(['req-3', 'req-2']);

    const target = new ReplyTable({ ...limits, maxReplies: 3 });
    target.import('inst-1', all);
    let runs = 0;
    expect(await target.run('inst-1', 'req-2', async () => (runs++, ok('again')))).toEqual(ok('reply 2'));
    expect(runs).toBe(0);
    // A reply given out counts as used: the last to be evicted (two new replies evict req-1, then req-3).
    await target.run('inst-1', 'req-4', async () => ok('reply 4'));
    await target.run('inst-1', 'req-5', async () => ok('reply 5'));
    expect(['req-1', 'req-2', 'req-3'].map((id) => target.has('inst-1', id))).toEqual([false, true, false]);
  });

  it('import - a reply past keepMs is not kept; one known here already wins', async () => {
    const table = new ReplyTable(limits);
    await table.run('inst-1', 'mine', async () => ok('mine'));
    table.import('inst-1', [{ requestId: 'mine', ageMs: 0, reply: ok('theirs') }, { requestId: 'old', ageMs: limits.keepMs, reply: ok('old') }]);
    expect(await table.run('inst-1', 'mine', async () => ok('run'))).toEqual(ok('mine'));
    expect(table.has('inst-1', 'old')).toBe(false);
  });

  it('exportSince - the instance\'s replies kept after the last `through`, newest first within the bytes given; evicted ones and other instances\' left out', async () => {
    const table = new ReplyTable({ ...limits, maxReplies: 4 });
    for (let i = 1; i <= 3; i++) await table.run('inst-1', `req-${i}`, async () => ok(`reply ${i}`));
    await table.run('inst-2', 'other', async () => ok('not this instance'));
    const first = table.exportSince('inst-1', 1024 * 1024, 0);
    expect(first.replies.map((r) => r.requestId)).toEqual(['req-3', 'req-2', 'req-1']);
    expect(table.exportSince('inst-1', 1024 * 1024, first.through)).toEqual({ replies: [], through: first.through });
    await table.run('inst-1', 'req-4', async () => ok('reply 4'));
    await table.run('inst-1', 'req-5', async () => ok('reply 5'));
    // maxReplies 4: req-1 and req-2 were evicted by req-4 and req-5 (and never reappear); those since the last call only.
    const next = table.exportSince('inst-1', replyBytes(ok('reply 5')), first.through);
    expect(next.replies.map((r) => r.requestId)).toEqual(['req-5']);
    expect(table.exportSince('inst-1', 1024 * 1024, first.through).replies.map((r) => r.requestId)).toEqual(['req-5', 'req-4']);
    expect(table.exportSince('inst-1', 1024 * 1024, 0).replies.map((r) => r.requestId)).toEqual(['req-5', 'req-4', 'req-3']);
    table.forget('inst-1');
    expect(table.exportSince('inst-1', 1024 * 1024, 0).replies).toEqual([]);
    expect(table.has('inst-2', 'other')).toBe(true);
    expect(table.has('inst-1', 'req-5')).toBe(false);
  });

  it('exportSince - an imported reply keeps its age; one past its time is left out', async () => {
    const table = new ReplyTable(limits);
    table.import('inst-1', [
      { requestId: 'aged', ageMs: 10_000, reply: ok('aged') },
      { requestId: 'expiring', ageMs: limits.keepMs - 20, reply: ok('expiring') },
    ]);
    await table.run('inst-1', 'fresh', async () => ok('fresh'));
    // 'expiring' had 20 ms left: gone once 40 ms have passed (time only moves on).
    await new Promise((res) => setTimeout(res, 40));
    const out = table.exportSince('inst-1', 1024 * 1024, 0).replies;
    expect(out.map((r) => r.requestId)).toEqual(['fresh', 'aged']);
    expect(out[1]!.ageMs).toBeGreaterThanOrEqual(10_000);
    expect(out[1]!.ageMs).toBeLessThan(limits.keepMs);
  });

  it('forget - the instance\'s replies only', async () => {
    const table = new ReplyTable(limits);
    await table.run('inst-1', 'a', async () => ok('a'));
    await table.run('inst-2', 'b', async () => ok('b'));
    table.forget('inst-1');
    expect(table.has('inst-1', 'a')).toBe(false);
    expect(table.has('inst-2', 'b')).toBe(true);
  });

  it('forget - thousands: none answers at once, all leave the cache over a few turns; one kept again meanwhile stays', async () => {
    const table = new ReplyTable({ ...limits, maxReplies: 10_000 });
    for (let i = 0; i < 1000; i++) await table.run('inst-1', `req-${i}`, async () => ok(`reply ${i}`));
    await table.run('inst-2', 'other', async () => ok('other'));
    table.forget('inst-1');
    // Still in the cache (deleted a slice per turn), but never an answer: the request runs again.
    expect(table.size.replies).toBeGreaterThan(1);
    expect(table.has('inst-1', 'req-999')).toBe(false);
    expect(table.kept('inst-1', 'req-999')).toBe(false);
    expect(await table.run('inst-1', 'req-999', async () => ok('again'))).toEqual(ok('again'));
    // The instance came back with a reply of a forgotten request: kept, not taken for the forgotten one.
    table.import('inst-1', [{ requestId: 'req-998', ageMs: 0, reply: ok('imported') }]);
    for (let turns = 0; table.size.replies > 3 && turns < 100; turns++) await new Promise((res) => setImmediate(res));
    expect(table.size.replies).toBe(3);
    expect(await table.run('inst-1', 'req-999', async () => ok('a third run'))).toEqual(ok('again'));
    expect(await table.run('inst-1', 'req-998', async () => ok('run'))).toEqual(ok('imported'));
    expect(table.has('inst-2', 'other')).toBe(true);
    expect(table.exportSince('inst-1', 1024 * 1024, 0).replies.map((r) => r.requestId)).toEqual(['req-998', 'req-999']);
  });
});
