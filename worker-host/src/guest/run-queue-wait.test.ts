/** The calling thread's run-queue wait, read from the kernel's schedstat. */
import { availableParallelism, platform } from 'node:os';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { parseSecondField, RunQueueWait } from './run-queue-wait.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('run-queue wait', () => {
  it('parse - the second field of a schedstat line, in ns', () => {
    const line = bytes('90928324 5713429 13\n');
    expect(parseSecondField(line, line.length)).toBe(5713429);
    // Only the bytes read count.
    expect(parseSecondField(bytes('1 23456 7'), 4)).toBe(23);
  });

  it('parse - a line without a second number gives none', () => {
    for (const s of ['', '90928324', '90928324 ', '90928324 x 13']) expect(parseSecondField(bytes(s), s.length)).toBeUndefined();
  });

  it.skipIf(platform() !== 'linux')('reading - grows while the thread is runnable and every core is taken by others', async () => {
    const wait = RunQueueWait.open();
    expect(wait).toBeDefined();
    wait!.sinceLastUs();
    // Two busy threads per core for 300 ms, while this one also wants a core: it waits its turns.
    const hogs = Array.from({ length: availableParallelism() * 2 }, () => new Worker('const end = Date.now() + 300; while (Date.now() < end);', { eval: true }));
    try {
      await Promise.all(hogs.map((w) => new Promise((r) => w.once('online', r))));
      const end = Date.now() + 200;
      while (Date.now() < end);
      expect(wait!.sinceLastUs()).toBeGreaterThan(1000);
      // Read again at once: nothing (or little) waited since.
      expect(wait!.sinceLastUs()).toBeGreaterThanOrEqual(0);
    } finally {
      await Promise.all(hogs.map((w) => w.terminate()));
      wait!.close();
    }
  });
});
