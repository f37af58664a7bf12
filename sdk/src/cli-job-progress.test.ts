/** `flurry job run`'s progress report: the tally of events, the bar's line, and how the bar redraws. */
import { describe, expect, it } from 'vitest';
import { JobProgress, PlainProgress, progressLine, TtyProgress } from './cli-job-progress.js';
import type { JobEvent } from './jobs.js';
import type { JobRecord } from './types.js';

const record: JobRecord = {
  id: 'job-7', tenant: 'default', function: 'pi', digest: 'ab'.repeat(32), clones: 4, state: 'queued',
  createdAt: 0, updatedAt: 0, counts: { done: 0, failed: 0, running: 0, pending: 4 },
  clonesDetail: [0, 1, 2, 3].map((index) => ({ index, state: 'pending', attempts: 0 })), pagesFetched: 0,
};

const story: JobEvent[] = [
  { kind: 'state', data: record },
  { kind: 'placed', data: { parentHost: 'host-a' } },
  { kind: 'forked', data: { clones: 4 } },
  { kind: 'progress', data: { index: 0, done: 1, total: 2 } },
  { kind: 'progress', data: { index: 1, done: 1, total: 4 } },
  { kind: 'clone.done', data: { index: 2, pages: 30 } },
  { kind: 'clone.failed', data: { index: 3, error: { code: 'guest_trap', message: 'boom' } } },
];

describe('job progress', () => {
  it('job progress - tallies clone states, averages guest progress over clones and sums pages', () => {
    const tally = new JobProgress();
    for (const event of story) tally.apply(event);
    // Clone 0 at 1/2, clone 1 at 1/4, clone 2 done, clone 3 failed without progress: (0.5 + 0.25 + 1 + 0) / 4.
    expect(tally.snapshot()).toEqual({ state: 'running', clones: 4, pending: 0, running: 2, done: 1, failed: 1, fraction: 0.4375, pagesFetched: 30 });
    tally.apply({ kind: 'clone.failed', data: { index: 1, retrying: true } });
    expect(tally.snapshot()).toMatchObject({ running: 1, pending: 1, fraction: 0.375 });
    tally.apply({ kind: 'done', data: { job: { ...record, state: 'done', pagesFetched: 99, clonesDetail: record.clonesDetail.map((c) => ({ ...c, state: 'done' })) } } });
    expect(tally.snapshot()).toMatchObject({ state: 'done', done: 4, failed: 0, fraction: 1, pagesFetched: 99 });
  });

  it('job progress - the bar line shows percent, running, done, failed, pages and state within the width', () => {
    const tally = new JobProgress();
    for (const event of story) tally.apply(event);
    const line = progressLine(tally.snapshot(), 100);
    expect(line).toBe('running      [#############.................]  43%  running 2  done 1/4  failed 1  pages 30');
    expect(progressLine(tally.snapshot(), 80)).toBe('running      [####......]  43%  running 2  done 1/4  failed 1  pages 30');
    expect(progressLine(tally.snapshot(), 40)).toHaveLength(39);
  });

  it('job progress - on a terminal the bar is redrawn in place and ends with a newline; elsewhere one line per event', async () => {
    const written: string[] = [];
    const tty = new TtyProgress({ write: (text: string) => written.push(text), columns: 120 });
    for (const event of story) tty.event(event);
    // Throttled: the first event draws at once, the rest within the next 100 ms.
    expect(written).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(written).toHaveLength(2);
    tty.finish();
    expect(written.every((text, i) => i === written.length - 1 || text.startsWith('\r\x1b[2Krunning ') || text.startsWith('\r\x1b[2Kqueued '))).toBe(true);
    expect(written.at(-1)).toBe('\n');
    expect(written.at(-2)).toContain('done 1/4  failed 1');

    const plain: string[] = [];
    const reporter = new PlainProgress({ write: (text: string) => plain.push(text) });
    for (const event of story) reporter.event(event);
    reporter.finish();
    expect(plain).toEqual([
      'state queued: job job-7, pi, 4 clones (0 done, 0 failed)\n',
      'placed parentHost=host-a\n',
      'forked clones=4\n',
      'progress clone 0: 1/2\n',
      'progress clone 1: 1/4\n',
      'clone 2 done, 30 pages\n',
      'clone 3 failed: guest_trap: boom\n',
    ]);
  });
});
