/**
 * A thread's CPU scheduling policy (worker-host/native/src/thread_priority.c):
 * loading the addon, and whether a thread of this process may go to
 * SCHED_IDLE and back here. The way back is what the kernel may refuse: an
 * unprivileged thread returns from SCHED_IDLE to SCHED_OTHER only if its nice
 * value is within its RLIMIT_NICE (sched(7); `can_nice` in the kernel: 20 −
 * nice ≤ the limit, so nice 0 needs RLIMIT_NICE ≥ 20, and the default is 0),
 * or with CAP_SYS_NICE. The probe tries both switches on a thread made for
 * it, never on one that matters.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';

export const THREAD_PRIORITY_ADDON_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/flurry_thread_priority.node');

export interface ThreadPriorityAddon {
  /** The calling thread's kernel id. */
  threadId(): number;
  /** 0, or the errno the kernel refused with. */
  setIdle(tid: number): number;
  /** 0, or the errno the kernel refused with. */
  setNormal(tid: number): number;
  /** The thread's policy now, or −errno. */
  policy(tid: number): 'idle' | 'normal' | 'other' | number;
  /** 0 if a thread may go to SCHED_IDLE and back; else the errno refused (negated: the way back). */
  probe(): number;
}

export type ThreadPriorityStatus = { addon: ThreadPriorityAddon; reason?: undefined } | { addon?: undefined; reason: string };

let status: ThreadPriorityStatus | undefined;

/** The addon if threads may go to SCHED_IDLE and back here, else why not; decided once per process. */
export function threadPriorityStatus(): ThreadPriorityStatus {
  status ??= decide();
  return status;
}

function decide(): ThreadPriorityStatus {
  const loaded = loadThreadPriority();
  return 'reason' in loaded ? loaded : (probeReason(loaded.probe()) ?? { addon: loaded });
}

/**
 * The addon without the probe: for a thread whose process probed already (a guest thread handed the state that
 * says so), else why it cannot be loaded.
 */
export function loadThreadPriority(): ThreadPriorityAddon | { reason: string } {
  if (process.platform !== 'linux') return { reason: `per-thread policies need Linux (this is ${process.platform})` };
  if (!existsSync(THREAD_PRIORITY_ADDON_PATH)) return { reason: `${THREAD_PRIORITY_ADDON_PATH} is not built` };
  try {
    return createRequire(import.meta.url)(THREAD_PRIORITY_ADDON_PATH) as ThreadPriorityAddon;
  } catch (e) {
    return { reason: `cannot load ${THREAD_PRIORITY_ADDON_PATH}: ${(e as Error).message}` };
  }
}

/** Why the probe's result `e` forbids the switches, or undefined if it allows them. */
export function probeReason(e: number): { reason: string } | undefined {
  if (e === 0) return undefined;
  const name = Object.entries(constants.errno).find(([, n]) => n === Math.abs(e))?.[0] ?? `errno ${Math.abs(e)}`;
  return { reason: e < 0 ? `the kernel refuses the way back from SCHED_IDLE to SCHED_OTHER (${name}: RLIMIT_NICE too low and no CAP_SYS_NICE)` : `the kernel refuses SCHED_IDLE (${name})` };
}
