/** Threads to SCHED_IDLE and back: allowed here (root), refused to an unprivileged user, and said once when refused. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@flurry/core';
import { probeReason, threadPriorityStatus } from './thread-priority.js';
import { reportAheadPriority } from '../guest/ahead-priority.js';

const built = new URL('../../dist/native/thread-priority.js', import.meta.url).href;
const isRoot = process.getuid?.() === 0;

describe('thread priority', () => {
  it.skipIf(!isRoot)('probe - with CAP_SYS_NICE a thread goes to SCHED_IDLE and back, its nice kept', () => {
    const { addon, reason } = threadPriorityStatus();
    expect(reason).toBeUndefined();
    const tid = addon!.threadId();
    expect(addon!.setIdle(tid)).toBe(0);
    expect(addon!.policy(tid)).toBe('idle');
    expect(addon!.setNormal(tid)).toBe(0);
    expect(addon!.policy(tid)).toBe('normal');
  });

  it.skipIf(!isRoot)('probe - an unprivileged process (RLIMIT_NICE 0) is refused the way back, so its threads never lower themselves', () => {
    const script = `import(${JSON.stringify(built)}).then((m) => console.log(JSON.stringify(m.threadPriorityStatus().reason ?? null)))`;
    const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatch(/refuses the way back from SCHED_IDLE to SCHED_OTHER \(EPERM/);
  });

  it('probe result - 0 allows; a refusal is named, the way back apart from the way there', () => {
    expect(probeReason(0)).toBeUndefined();
    expect(probeReason(-1)?.reason).toMatch(/way back .*EPERM/);
    expect(probeReason(1)?.reason).toMatch(/refuses SCHED_IDLE \(EPERM\)/);
  });

  it('report - a refusal is logged once per process, however many pools start', () => {
    const lines: string[] = [];
    const log = createLogger('test', {}, 'info', { write: (line: string) => void lines.push(line) });
    const refused = { reason: 'refused here' };
    reportAheadPriority(log, refused);
    reportAheadPriority(log, refused);
    expect(lines.filter((l) => l.includes('refused here'))).toHaveLength(1);
  });
});
