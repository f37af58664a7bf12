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

const base = { at: 1, tenant: 'default', jobId: 'job-7' };
const pages = (unicast: number) => ({ local: 3, multicast: 10, unicast, zero: 1 });

const story: JobEvent[] = [
  { ...base, kind: 'state', job: record },
  { ...base, kind: 'placed', host: 'host-a' },
  { ...base, kind: 'snapshot', host: 'host-a', snapshotId: 'snap-1', initMs: 1500, snapshotMs: 20 },
  { ...base, kind: 'forked', host: 'host-a', indices: [0, 1, 2, 3], runningMs: 4 },
  { ...base, kind: 'progress', index: 0, done: 1, total: 2 },
  { ...base, kind: 'progress', index: 1, done: 1, total: 4 },
  { ...base, kind: 'clone.done', index: 2, host: 'host-b', startMs: 0, runMs: 250, pages: pages(20) },
  { ...base, kind: 'clone.failed', index: 3, host: 'host-a', attempt: 1, error: { code: 'guest_trap', message: 'boom' }, final: true },
];

describe('job progress', () => {
  it('job progress - tallies clone states, averages guest progress over clones and sums pages', () => {
    const tally = new JobProgress();
    for (const event of story) tally.apply(event);
    // Clone 0 at 1/2, clone 1 at 1/4, clone 2 done, clone 3 failed without progress: (0.5 + 0.25 + 1 + 0) / 4.
    expect(tally.snapshot()).toEqual({ state: 'running', clones: 4, pending: 0, running: 2, done: 1, failed: 1, fraction: 0.4375, pagesFetched: 30 });
    tally.apply({ ...base, kind: 'clone.failed', index: 1, attempt: 1, error: { code: 'timeout', message: 'slow' }, final: false });
    expect(tally.snapshot()).toMatchObject({ running: 1, pending: 1, fraction: 0.375 });
    tally.apply({ ...base, kind: 'done', job: { ...record, state: 'done', pagesFetched: 99, clonesDetail: record.clonesDetail.map((c) => ({ ...c, state: 'done' })) } });
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
      'placed parent on host-a\n',
      'snapshot snap-1 on host-a: init 1s, snapshot 20ms\n',
      'forked 4 clones on host-a, running in 4ms\n',
      'progress clone 0: 1/2\n',
      'progress clone 1: 1/4\n',
      'clone 2 done on host-b in 250ms, 30 pages fetched\n',
      'clone 3 failed on host-a: guest_trap: boom (attempt 1)\n',
    ]);
  });
});
