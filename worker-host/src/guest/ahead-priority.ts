/**
 * A guest thread's CPU priority for its work ahead. After it posts a call's
 * result, three threads want a core at once on this 2-core machine: the
 * gateway with the reply, the host's main thread with the result, and the
 * guest thread going on with what it makes ahead (the instance it ran given
 * back and remapped, the next one made: ahead-work.ts), then polling. That
 * work is for the next call, not this one, so the thread does it at the
 * kernel's lowest priority (SCHED_IDLE: a core only when no other thread
 * wants it) and returns to the ordinary policy (SCHED_OTHER, nice unchanged)
 * before it handles a message or sleeps (docs/fork.md, "Work ahead at idle
 * priority").
 *
 * A call that comes while the thread is lowered must not wait for a spare
 * core: the pool's main thread raises the thread as it posts the message.
 * Shared state (a SharedArrayBuffer): the thread's kernel id (Int32 at 0) and
 * whether it is lowered (Int32 at 1). The thread lowers itself first and then
 * sets the flag; whoever clears the flag (the thread before its next message,
 * or the poster after ringing) raises it. The poster rings before it reads the
 * flag and the thread sets the flag before it reads the bell, so either the
 * poster raises a lowered thread or the thread sees the bell and raises
 * itself.
 *
 * Where the kernel refuses (threadPriorityStatus), nothing is shared and
 * nothing changes.
 */
import type { Logger } from '@flurry/core';
import { loadThreadPriority, threadPriorityStatus, type ThreadPriorityAddon } from '../native/thread-priority.js';
import type { MailboxEnd } from './thread-messages.js';

const TID = 0;
const LOWERED = 1;
const SHARED_BYTES = 8;

/** The shared state for one guest thread's priority, or undefined where threads cannot go to SCHED_IDLE and back. */
export function aheadPriorityState(): SharedArrayBuffer | undefined {
  return threadPriorityStatus().addon ? new SharedArrayBuffer(SHARED_BYTES) : undefined;
}

let reported = false;

/** Says once per process that guest threads do their work ahead at the ordinary priority, and why. */
export function reportAheadPriority(log: Logger, status: { reason?: string } = threadPriorityStatus()): void {
  const { reason } = status;
  if (reported || reason === undefined) return;
  reported = true;
  log.info({ reason }, 'guest threads do their work ahead at the ordinary CPU priority');
}

/** The guest thread's end of its mailbox's priority state, if the pool's process found the switches allowed. */
export function aheadPriorityOf(end: MailboxEnd): AheadPriority | undefined {
  if (!end.priority) return undefined;
  const addon = loadThreadPriority();
  return 'reason' in addon ? undefined : new AheadPriority(end.priority, addon);
}

/** The guest thread's end. */
export class AheadPriority {
  private readonly state: Int32Array;
  private readonly tid: number;

  constructor(
    shared: SharedArrayBuffer,
    private readonly addon: ThreadPriorityAddon,
  ) {
    this.state = new Int32Array(shared);
    this.tid = addon.threadId();
    Atomics.store(this.state, TID, this.tid);
  }

  /** The work from here on is for later calls: run it only on a spare core. */
  lower(): void {
    if (Atomics.load(this.state, LOWERED) === 1) return;
    // Lowered first, flagged after: a poster that sees the flag raises a thread that is lowered already.
    if (this.addon.setIdle(this.tid) === 0) Atomics.store(this.state, LOWERED, 1);
  }

  /** Back to the ordinary policy, unless the poster did it already. */
  restore(): void {
    if (Atomics.exchange(this.state, LOWERED, 0) === 1) this.addon.setNormal(this.tid);
  }
}

/** The posting end (the pool's main thread): raises the thread if it is lowered, after the message is rung. */
export class AheadPriorityRaiser {
  private readonly state: Int32Array;

  constructor(
    shared: SharedArrayBuffer,
    private readonly addon: ThreadPriorityAddon,
  ) {
    this.state = new Int32Array(shared);
  }

  raise(): void {
    if (Atomics.exchange(this.state, LOWERED, 0) === 1) this.addon.setNormal(Atomics.load(this.state, TID));
  }
}
