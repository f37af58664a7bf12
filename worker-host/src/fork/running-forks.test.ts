import { describe, expect, it } from 'vitest';
import { poolKey } from './pool-keys.js';
import { cloneCallId, RunningForks } from './running-forks.js';

describe('running forks', () => {
  it('of - a job cancel finds only the fork requests that named the job, whatever their request ids look like', () => {
    const running = new RunningForks();
    const mine = running.add('r-1', 'job_a', 'snap_1', [0, 1]);
    // A request id that starts with the other job's id is not that job's.
    const other = running.add('job_a.2', 'job_b', 'snap_1', [2]);
    const driver = running.add('drive', undefined, 'snap_1', [0]);
    running.add('r-3', 'job_a', 'snap_2', [0]);
    expect(running.of('snap_1', 'job_a')).toEqual([mine]);
    expect(running.of('snap_1')).toEqual([mine, other, driver]);
    expect([...mine.callIds]).toEqual([cloneCallId('r-1', 0), cloneCallId('r-1', 1)]);
    running.remove(mine);
    expect(running.of('snap_1', 'job_a')).toEqual([]);
  });

  it('pool keys - distinct uses of one snapshot never share a key', () => {
    const keys = [
      poolKey({ kind: 'parent', snapshotId: 's' }),
      poolKey({ kind: 'adopted', snapshotId: 's', transport: 'multicast', adoption: 1 }),
      poolKey({ kind: 'adopted', snapshotId: 's', transport: 'multicast', adoption: 2 }),
      poolKey({ kind: 'adopted', snapshotId: 's', transport: 'unicast', adoption: 1 }),
      poolKey({ kind: 'own', snapshotId: 's', mode: 'cold', requestId: 'r', index: 0 }),
      poolKey({ kind: 'own', snapshotId: 's', mode: 'eager', requestId: 'r', index: 0 }),
      poolKey({ kind: 'own', snapshotId: 's', mode: 'cold', requestId: 'r', index: 1 }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
