// The supervision policy as pure logic, and the Supervisor driving it over
// fake processes with fake timers (test/supervisor.test.ts runs it on a real fleet).
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunningService } from './services.js';
import { decideRestart, DEFAULT_BACKOFF, NO_HISTORY, Supervisor, type RestartHistory } from './supervisor.js';

/** The waits of `exits` exits in a row, each after running `ranMs`. */
function waits(exits: number, ranMs: number): number[] {
  let history: RestartHistory = NO_HISTORY;
  const out: number[] = [];
  for (let i = 0; i < exits; i++) {
    const d = decideRestart(DEFAULT_BACKOFF, history, { ranMs, stopping: false });
    if (!d.restart) throw new Error('no restart');
    out.push(d.delayMs);
    history = d.history;
  }
  return out;
}

describe('decideRestart', () => {
  it('back-off - 1 s, then doubling with each exit soon after a start, up to 30 s', () => {
    expect(waits(8, 500)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('back-off - stays at the maximum after very many exits', () => {
    expect(waits(2000, 0).at(-1)).toBe(30_000);
  });

  it('reset - a process that ran healthily before it died waits the initial delay again', () => {
    const looping = decideRestart(DEFAULT_BACKOFF, { quickExits: 5 }, { ranMs: 10, stopping: false });
    expect(looping).toMatchObject({ restart: true, delayMs: 30_000, crashLooping: true, history: { quickExits: 6 } });
    const healthy = decideRestart(DEFAULT_BACKOFF, { quickExits: 5 }, { ranMs: DEFAULT_BACKOFF.healthyAfterMs, stopping: false });
    expect(healthy).toMatchObject({ restart: true, delayMs: 1000, crashLooping: false, history: { quickExits: 1 } });
  });

  it('crash loop - the first exit is not one; a second exit soon after the restart is', () => {
    const first = decideRestart(DEFAULT_BACKOFF, NO_HISTORY, { ranMs: 100, stopping: false });
    expect(first).toMatchObject({ restart: true, crashLooping: false });
    if (!first.restart) return;
    expect(decideRestart(DEFAULT_BACKOFF, first.history, { ranMs: 100, stopping: false })).toMatchObject({ restart: true, crashLooping: true });
  });

  it('stopping - never a restart while the fleet is being stopped', () => {
    expect(decideRestart(DEFAULT_BACKOFF, NO_HISTORY, { ranMs: 0, stopping: true })).toEqual({ restart: false });
    expect(decideRestart(DEFAULT_BACKOFF, { quickExits: 3 }, { ranMs: 1e9, stopping: true })).toEqual({ restart: false });
  });
});

/** A process that exits when told to, with a given code or signal. */
function fakeService(pid: number, lines: string[] = []): RunningService & { die(code: number | null, signal?: NodeJS.Signals): void } {
  let exit!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (exit = resolve));
  const process = { pid, exitCode: null as number | null, signalCode: null as NodeJS.Signals | null };
  return {
    name: `fake ${pid}`,
    process: process as unknown as ChildProcess,
    lines,
    ready: {},
    exited,
    stop: async () => null,
    kill: async () => undefined,
    die(code, signal) {
      process.exitCode = code;
      process.signalCode = signal ?? null;
      exit(code);
    },
  };
}

describe('Supervisor', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('restart - a process that exits is started again after the back-off; the log says why, with its last lines', async () => {
    const log: string[] = [];
    const supervisor = new Supervisor((l) => log.push(l));
    const first = fakeService(1, ['starting', 'oops']);
    const second = fakeService(2);
    const restart = vi.fn<() => Promise<RunningService>>().mockResolvedValueOnce(second).mockResolvedValue(fakeService(3));
    supervisor.watch({ name: 'host host-1', restart }, first);
    first.die(null, 'SIGKILL');
    await vi.advanceTimersByTimeAsync(999);
    expect(restart).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(restart).toHaveBeenCalledTimes(1);
    expect(log.join('\n')).toMatch(/host host-1 was killed by SIGKILL after 0 s; last lines:\nstarting\noops/);
    expect(log.join('\n')).toMatch(/starting host host-1 again in 1 s/);
    expect(log.at(-1)).toBe('host host-1 is running again (pid 2)');
    // The new process dies at once too: twice the wait, and the log calls it a crash loop.
    second.die(3);
    await vi.advanceTimersByTimeAsync(1999);
    expect(restart).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(restart).toHaveBeenCalledTimes(2);
    expect(log.join('\n')).toMatch(/host host-1 exited with code 3 after 0 s/);
    expect(log.join('\n')).toMatch(/host host-1 keeps dying right after it starts \(2 times in a row\); starting it again in 2 s/);
    await supervisor.stop();
  });

  it('failed start - a process that cannot start is retried with a growing back-off, not in a hot loop', async () => {
    const log: string[] = [];
    const supervisor = new Supervisor((l) => log.push(l));
    const first = fakeService(1);
    const restart = vi.fn(async (): Promise<RunningService> => {
      throw new Error('gateway exited with code 1 before it was ready');
    });
    supervisor.watch({ name: 'gateway', restart }, first);
    first.die(1);
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000);
    expect(restart).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(7999);
    expect(restart).toHaveBeenCalledTimes(3);
    expect(log.filter((l) => l.startsWith('gateway failed to start: gateway exited with code 1'))).toHaveLength(3);
    expect(log.at(-1)).toBe('gateway keeps dying right after it starts (4 times in a row); starting it again in 8 s');
    await supervisor.stop();
  });

  it('stop - a pending restart is cancelled, and exits after the stop are not restarted', async () => {
    const log: string[] = [];
    const supervisor = new Supervisor((l) => log.push(l));
    const a = fakeService(1);
    const b = fakeService(2);
    const restart = vi.fn(async () => fakeService(3));
    supervisor.watch({ name: 'host host-1', restart }, a);
    supervisor.watch({ name: 'host host-2', restart }, b);
    a.die(1);
    await vi.advanceTimersByTimeAsync(500);
    await supervisor.stop();
    b.die(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(restart).not.toHaveBeenCalled();
    expect(log.some((l) => l.includes('host-2'))).toBe(false);
  });

  it('stop - waits for a restart under way, so that the fleet stops the process it started', async () => {
    const supervisor = new Supervisor(() => undefined);
    const a = fakeService(1);
    let started = false;
    const restart = vi.fn(async () => {
      await new Promise((r) => setTimeout(r, 5000));
      started = true;
      return fakeService(2);
    });
    supervisor.watch({ name: 'gateway', restart }, a);
    a.die(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(restart).toHaveBeenCalledTimes(1);
    const stopped = supervisor.stop();
    await vi.advanceTimersByTimeAsync(5000);
    await stopped;
    expect(started).toBe(true);
  });
});
