import { describe, expect, it } from 'vitest';
import { ownRunQueueWait, runQueueWaitNs } from './own-wait.js';

describe('own-wait', () => {
  it('schedstat - the second of three numbers is the run-queue wait', () => {
    expect(runQueueWaitNs('123456 7890 42\n')).toBe(7890);
  });

  it('schedstat - anything but three whole numbers is refused by name', () => {
    expect(() => runQueueWaitNs('')).toThrow(/three whole numbers, got ""/);
    expect(() => runQueueWaitNs('1 2')).toThrow(/three whole numbers/);
    expect(() => runQueueWaitNs('1 x 3')).toThrow(/three whole numbers/);
    expect(() => runQueueWaitNs('1 2 3 4')).toThrow(/three whole numbers/);
  });

  it.runIf(process.platform === 'linux')('reader - this thread\'s wait never goes back', () => {
    const wait = ownRunQueueWait();
    expect(wait).toBeDefined();
    const first = wait!.readNs();
    let spun = 0;
    for (let i = 0; i < 1e6; i++) spun += i;
    const second = wait!.readNs();
    wait!.close();
    expect(spun).toBeGreaterThan(0);
    expect(Number.isInteger(first)).toBe(true);
    expect(second).toBeGreaterThanOrEqual(first);
  });
});
