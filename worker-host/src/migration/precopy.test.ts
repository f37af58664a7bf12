/** The pre-copy driver with fake endpoints: Xen's stop rules, what it records, abort on failure, and a commit whose answer is lost. */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@flurry/core';
import { CommitOutcomeUnknown, nextRate, PACED_PIECE_BYTES, pacingFrom, precopy, stopRule, type CommitOutcome, type PrecopySource, type PrecopyTarget } from './precopy.js';

const round = (n: number) => ({ pages: Uint32Array.from({ length: n }, (_, i) => i), bytes: new Uint8Array(n * PAGE_SIZE), memoryBytes: 1 << 24 });

function fakes(dirty: number[], opts: { failApply?: number } = {}) {
  const log: string[] = [];
  let r = 0;
  let applies = 0;
  const source: PrecopySource = {
    round: async () => {
      log.push(`round${r}`);
      return round(dirty[Math.min(r++, dirty.length - 1)]!);
    },
    stopAndCopy: async () => {
      log.push('stop');
      return { ...round(3), globals: { __flurry_global_0: 7 } };
    },
    commit: () => void log.push('commit'),
    abort: () => void log.push('abort'),
  };
  const target: PrecopyTarget = {
    quiesce: async () => void log.push('quiesce target'),
    apply: async (pages) => {
      if (opts.failApply === applies++) throw new Error('target gone');
      log.push(`apply${pages.length}`);
    },
    commit: async (last, globals, pagesSent) => {
      if (opts.failApply === applies++) throw new Error('target gone');
      log.push(`apply${last.pages.length}`, `finish${JSON.stringify(globals)}`, `sent${pagesSent}`);
      return { sendMs: 0, pagesApplied: pagesSent };
    },
  };
  return { source, target, log };
}

describe('precopy', () => {
  it('stop rules - budget after round 1, not shrinking from round 2, the round limit', () => {
    // Round 0 never stops on the budget: it copies everything.
    expect(stopRule([10], 0.001, 30, 30)).toBeUndefined();
    expect(stopRule([4000, 100], 0.1, 30, 30)).toBe('budget');
    expect(stopRule([4000, 1000], 0.1, 30, 30)).toBeUndefined();
    expect(stopRule([4000, 1000, 1200], 0.1, 30, 30)).toBe('not-shrinking');
    expect(stopRule([4000, 1000, 900], 0.1, 30, 3)).toBe('max-rounds');
    expect(stopRule([4000], 0.1, 30, 1)).toBe('max-rounds');
  });

  it('pacing - Clark et al.: round 0 at the start rate, then the dirtying rate plus the margin, never slower, up to the cap', () => {
    const MiB = 1024 * 1024;
    expect(pacingFrom(0)).toBeUndefined();
    const p = pacingFrom(32)!;
    expect(p).toEqual({ startBytesPerS: 32 * MiB, marginBytesPerS: 16 * MiB, capBytesPerS: 160 * MiB });
    // 40 MiB dirtied in a 1 s round: 40 + 16.
    expect(nextRate(p, 32 * MiB, 40 * MiB, 1000)).toBe(56 * MiB);
    // Little dirtied: never below the round before.
    expect(nextRate(p, 32 * MiB, 1 * MiB, 1000)).toBe(32 * MiB);
    expect(nextRate(p, 32 * MiB, 400 * MiB, 1000)).toBe(160 * MiB);
    expect(nextRate(p, 32 * MiB, 1 * MiB, 0)).toBe(160 * MiB);
  });

  it('waits - each slice waits first as long as the source says, told its round; the report says how long', async () => {
    const { source, target, log } = fakes([300, 100, 40, 40]);
    let asked = 0;
    source.waitBeforeSlice = (r) => {
      log.push(`wait${asked}:${r}`);
      return asked++ === 0 ? 15 : 0;
    };
    const report = await precopy(source, target, { downtimeBudgetMs: 0, maxRounds: 30 });
    expect(report.rounds.map((r) => r.pages)).toEqual([300, 100, 40, 40]);
    // Each round is one slice here: asked once before each, never in the pause.
    expect(log.slice(0, 3)).toEqual(['wait0:0', 'round0', 'apply300']);
    expect(log.filter((l) => l.startsWith('wait'))).toEqual(['wait0:0', 'wait1:1', 'wait2:2', 'wait3:3']);
    expect(report.rounds[0]!.waitedMs).toBeGreaterThanOrEqual(14);
    expect(report.rounds.slice(1).map((r) => r.waitedMs)).toEqual([0, 0, 0]);
  });

  it('waits - each slice is told the bytes of the slice before it in its round (0 before a round\'s first), for the source to pace by', async () => {
    // Round 0 in three slices of 64, 64 and 10 pages, then rounds of one slice.
    const slices = [[64, 64, 10], [5], [2]];
    let r = 0;
    let s = 0;
    const { source, target } = fakes([]);
    source.round = async () => {
      const pages = slices[r]![s]!;
      const more = s + 1 < slices[r]!.length;
      [r, s] = more ? [r, s + 1] : [Math.min(r + 1, slices.length - 1), 0];
      return { ...round(pages), more };
    };
    const told: string[] = [];
    source.waitBeforeSlice = (round, lastBytes) => (told.push(`${round}:${lastBytes / PAGE_SIZE}`), 0);
    await precopy(source, target, { downtimeBudgetMs: 0, maxRounds: 3 });
    expect(told).toEqual(['0:0', '0:64', '0:64', '1:0', '2:0']);
  });

  it('pacing - paced rounds send every page once, in pieces of at most PACED_PIECE_BYTES; the last pages in one step', async () => {
    const { source, target, log } = fakes([300, 100, 40, 40]);
    const sent: number[] = [];
    const apply = target.apply.bind(target);
    target.apply = async (pages, bytes, memoryBytes) => {
      sent.push(...pages);
      expect(bytes.length).toBeLessThanOrEqual(PACED_PIECE_BYTES);
      expect(bytes.length).toBe(pages.length * PAGE_SIZE);
      return apply(pages, bytes, memoryBytes);
    };
    // Fast enough that the test does not wait long: 300 pages at 64 MiB/s is about 18 ms.
    const report = await precopy(source, target, { downtimeBudgetMs: 0, maxRounds: 30, pacing: pacingFrom(64) });
    expect(report.rounds.map((r) => r.pages)).toEqual([300, 100, 40, 40]);
    expect(sent.length).toBe(300 + 100 + 40 + 40);
    expect(new Set(sent.slice(0, 300)).size).toBe(300);
    const per = PACED_PIECE_BYTES / PAGE_SIZE;
    // The rounds' pieces, then the commit's last pages.
    expect(log.filter((l) => l.startsWith('apply')).length).toBe(Math.ceil(300 / per) + Math.ceil(100 / per) + 1 + 1 + 1);
    expect(log.at(-2)).toBe('sent483');
  });

  it('pacing - a later round\'s dirtying rate is its whole size (known at its first slice: `left`), not its first slice\'s', async () => {
    const slices = [[60], [240, 240, 240, 240, 240], [30]];
    let r = 0;
    let s = 0;
    const { source, target } = fakes([]);
    source.round = async () => {
      const round = slices[r]!;
      const pages = round[s]!;
      const left = round.slice(s + 1).reduce((n, x) => n + x, 0);
      const slice = { pages: Uint32Array.from({ length: pages }, (_, i) => i), bytes: new Uint8Array(pages * PAGE_SIZE), memoryBytes: 1 << 24, more: left > 0, ...(r > 0 ? { left } : {}) };
      if (++s === round.length) [r, s] = [Math.min(r + 1, slices.length - 1), 0];
      return slice;
    };
    const MiB = 1024 * 1024;
    const pacing = { startBytesPerS: 8 * MiB, marginBytesPerS: 4 * MiB, capBytesPerS: 4000 * MiB };
    const report = await precopy(source, target, { downtimeBudgetMs: 0, maxRounds: 3, pacing });
    expect(report.rounds.map((x) => x.pages)).toEqual([60, 1200, 30]);
    expect(report.rounds[0]!.paceBytesPerS).toBe(8 * MiB);
    // Round 1 at round 1's 1,200 pages over round 0's time (plus the margin), not its first slice's 240.
    expect(report.rounds[1]!.paceBytesPerS).toBe(nextRate(pacing, 8 * MiB, 1200 * PAGE_SIZE, report.rounds[0]!.ms));
    expect(report.rounds[2]!.paceBytesPerS).toBe(nextRate(pacing, report.rounds[1]!.paceBytesPerS!, 30 * PAGE_SIZE, report.rounds[1]!.ms));
  });

  it('pacing - the budget rule uses the copy work, not the pacing\'s waits: a target slow to apply never stops on the budget', async () => {
    const { source, target } = fakes([300, 100, 40, 40]);
    const apply = target.apply.bind(target);
    // Each piece costs at least 2 ms of work (a busy wait, not a timer): every later round costs more than the 1 ms budget.
    target.apply = async (pages, bytes, memoryBytes) => {
      for (const until = performance.now() + 2; performance.now() < until; );
      return apply(pages, bytes, memoryBytes);
    };
    const report = await precopy(source, target, { downtimeBudgetMs: 1, maxRounds: 30, pacing: pacingFrom(16) });
    expect(report.stopReason).toBe('not-shrinking');
    expect(report.rounds.map((r) => r.pages)).toEqual([300, 100, 40, 40]);
    // The work per page, waits left out: far less than the paced rounds' wall time per page.
    const wallPerPage = report.rounds.reduce((n, r) => n + r.ms, 0) / (300 + 100 + 40 + 40);
    expect(report.perPageMs).toBeGreaterThan(0);
    expect(report.perPageMs).toBeLessThan(wallPerPage);
  });

  it('driver - rounds while the dirty set shrinks, then stop-and-copy and commit (last pages and globals), recording each round', async () => {
    const { source, target, log } = fakes([4096, 2000, 800, 800]);
    const report = await precopy(source, target, { downtimeBudgetMs: 0, maxRounds: 30 });
    expect(report.stopReason).toBe('not-shrinking');
    expect(report.rounds.map((r) => r.pages)).toEqual([4096, 2000, 800, 800]);
    expect(report.rounds.map((r) => r.bytes)).toEqual([4096, 2000, 800, 800].map((n) => n * PAGE_SIZE));
    expect(report.finalPages).toBe(3);
    expect(report.totalBytes).toBe((4096 + 2000 + 800 + 800 + 3) * PAGE_SIZE);
    // The target's garbage collected after each round but the last, never between the last round and the stop.
    expect(log.filter((l) => l.startsWith('quiesce'))).toEqual(['quiesce target', 'quiesce target', 'quiesce target']);
    expect(log.slice(0, 4)).toEqual(['round0', 'apply4096', 'quiesce target', 'round1']);
    expect(log.slice(4, 10)).toEqual(['apply2000', 'quiesce target', 'round2', 'apply800', 'quiesce target', 'round3']);
    expect(log.slice(-7)).toEqual(['round3', 'apply800', 'stop', 'apply3', 'finish{"__flurry_global_0":7}', 'sent7699', 'commit']);
    // Every page sent, rounds and the last ones, is what the target is told to have written.
    expect(report).toMatchObject({ pagesSent: 4096 + 2000 + 800 + 800 + 3, pagesApplied: 4096 + 2000 + 800 + 800 + 3 });
    // The pause is accounted for whole: its parts add up to it (the wait and read are inside the stop, the target's inside the commit).
    const { stopMs, sendMs, commitMs, releaseMs } = report.downtime;
    expect(stopMs + sendMs + commitMs + releaseMs).toBeCloseTo(report.downtimeMs, 6);
    expect(report.totalMs).toBeGreaterThanOrEqual(report.downtimeMs);
  });

  it('driver - a generous budget stops after round 1; a round limit bounds the rounds', async () => {
    expect((await precopy(fakes([4096, 50]).source, fakes([4096, 50]).target, { downtimeBudgetMs: 1e9 })).rounds).toHaveLength(2);
    const limited = await precopy(fakes([4096, 3000, 2000, 1000, 500]).source, fakes([]).target, { downtimeBudgetMs: 0, maxRounds: 3 });
    expect(limited.stopReason).toBe('max-rounds');
    expect(limited.rounds).toHaveLength(3);
  });

  it('driver - maxRounds 0 is stop-and-copy: no round before the stop, everything copied while stopped', async () => {
    const { source, target, log } = fakes([4096, 100]);
    const report = await precopy(source, target, { maxRounds: 0 });
    expect(report.stopReason).toBe('stop-and-copy');
    expect(report.rounds).toEqual([]);
    expect(log).toEqual(['stop', 'apply3', 'finish{"__flurry_global_0":7}', 'sent3', 'commit']);
    expect(report.totalBytes).toBe(3 * PAGE_SIZE);
  });

  it('driver - round 0 read in slices is one round; the target settles once, after it; each slice is handed back once applied', async () => {
    const log: string[] = [];
    let slice = 0;
    const source: PrecopySource = {
      round: async () => ({ ...round(slice < 3 ? 100 : 5), more: ++slice < 3 }),
      recycle: (sent) => void log.push(`recycle${sent.pages.length}`),
      stopAndCopy: async () => ({ ...round(1), globals: {} }),
      commit: () => void log.push('commit'),
      abort: () => void log.push('abort'),
    };
    const target: PrecopyTarget = {
      apply: async (pages) => void log.push(`apply${pages.length}`),
      settle: async () => void log.push('settle'),
      commit: async () => ({ sendMs: 0 }),
    };
    const report = await precopy(source, target, { downtimeBudgetMs: 1e9 });
    expect(report.rounds.map((r) => r.pages)).toEqual([300, 5]);
    expect(log).toEqual(['apply100', 'recycle100', 'apply100', 'recycle100', 'apply100', 'recycle100', 'settle', 'apply5', 'recycle5', 'commit']);
  });

  it('abort - a target that fails before commit aborts the source and the error is reported', async () => {
    const { source, target, log } = fakes([4096, 100], { failApply: 1 });
    await expect(precopy(source, target)).rejects.toThrow('target gone');
    expect(log).toContain('abort');
    expect(log).not.toContain('commit');
  });

  it('abort - the target drops what it received before the source resumes', async () => {
    const log: string[] = [];
    const source: PrecopySource = {
      round: async () => round(10),
      stopAndCopy: async () => ({ ...round(1), globals: {} }),
      commit: () => void log.push('source commit'),
      abort: () => void log.push('source abort'),
    };
    const target: PrecopyTarget = {
      apply: async () => void log.push('apply'),
      commit: async () => {
        throw new Error('refused: late');
      },
      abort: () => void log.push('target abort'),
    };
    await expect(precopy(source, target, { downtimeBudgetMs: 1e9 })).rejects.toThrow('refused: late');
    expect(log.slice(-2)).toEqual(['target abort', 'source abort']);
    expect(log).not.toContain('source commit');
  });

  /** A target whose commit takes effect (or not) but whose answer never comes back; `told` is what it says when asked. */
  function lostAnswer(told: () => Promise<CommitOutcome>, opts: { takes: boolean } = { takes: true }) {
    const { source, target, log } = fakes([4096, 100]);
    const lossy: PrecopyTarget = {
      apply: target.apply,
      commit: async (last, globals, pagesSent) => {
        if (opts.takes) await target.commit(last, globals, pagesSent);
        throw new CommitOutcomeUnknown('the answer to the commit was lost');
      },
      outcome: async () => {
        log.push('asked');
        return told();
      },
    };
    return { source, target: lossy, log };
  }

  it('lost commit answer - a commit that took effect: the source never resumes; it asks, then lets go', async () => {
    const { source, target, log } = lostAnswer(async () => ({ committed: true, timing: { sendMs: 0, pagesApplied: 4096 + 100 + 3 } }));
    const report = await precopy(source, target);
    expect(log.slice(-4)).toEqual(['finish{"__flurry_global_0":7}', 'sent4199', 'asked', 'commit']);
    expect(log).not.toContain('abort');
    expect(report).toMatchObject({ outcomeAsked: true, pagesSent: 4199, pagesApplied: 4199 });
  });

  it('lost commit answer - the target says it did not commit (and never will): the source resumes and the refusal is reported', async () => {
    const { source, target, log } = lostAnswer(async () => ({ committed: false, error: new Error('target refused: late') }), { takes: false });
    await expect(precopy(source, target)).rejects.toThrow('target refused: late');
    expect(log.slice(-2)).toEqual(['asked', 'abort']);
    expect(log).not.toContain('commit');
  });

  it('lost commit answer - nobody can tell: the source lets go without resuming (one owner or none, never two), the error is reported', async () => {
    const { source, target, log } = lostAnswer(async () => {
      throw new Error('the outcome is unknown after 60000 ms');
    });
    await expect(precopy(source, target)).rejects.toThrow('unknown after 60000 ms');
    expect(log.slice(-2)).toEqual(['asked', 'commit']);
    expect(log).not.toContain('abort');
  });

  it('lost commit answer - a target that cannot be asked counts it as refused; a refusal is never asked about', async () => {
    const unaskable = fakes([4096, 100]);
    const target: PrecopyTarget = { apply: unaskable.target.apply, commit: async () => Promise.reject(new CommitOutcomeUnknown('lost')) };
    await expect(precopy(unaskable.source, target)).rejects.toThrow('lost');
    expect(unaskable.log.at(-1)).toBe('abort');
    const refusing = lostAnswer(async () => ({ committed: true, timing: { sendMs: 0 } }));
    refusing.target.commit = async () => Promise.reject(new Error('the target wrote 4200 pages, the source sent 4199'));
    await expect(precopy(refusing.source, refusing.target)).rejects.toThrow('4200 pages');
    expect(refusing.log).not.toContain('asked');
    expect(refusing.log.at(-1)).toBe('abort');
  });
});
