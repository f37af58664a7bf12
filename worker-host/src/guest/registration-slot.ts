/**
 * The lazy-memory registration of a guest thread's running call, shared with
 * the main thread: a thread asleep in a fault whose page never comes cannot be
 * terminated (worker.terminate() hangs) until the main thread answers the
 * fault, and it must know the registration without asking the sleeping thread.
 */
import type { Worker } from 'node:worker_threads';
import type { NativePager } from '../native/pager.js';

/** How often a terminating thread's new faults are answered until it has exited. */
const RELEASE_INTERVAL_MS = 2;

export class RegistrationSlot {
  private readonly cell: Uint32Array;

  constructor(readonly buffer = new SharedArrayBuffer(4)) {
    this.cell = new Uint32Array(buffer);
  }

  /** Set by the guest thread before guest code can fault; cleared once the registration is gone. */
  set(registration: number | undefined): void {
    Atomics.store(this.cell, 0, registration ?? 0);
  }

  get(): number | undefined {
    return Atomics.load(this.cell, 0) || undefined;
  }
}

/**
 * Terminates a guest thread that may sleep in a fault of lazy memory: its
 * pending faults are zero-filled before and until it has exited (it may fault
 * again before it notices the termination). The clone never runs again, so the
 * zeros harm nothing; the page store is not touched.
 */
export function terminateGuestThread(worker: Worker, slot: RegistrationSlot, pager: NativePager | undefined): Promise<number> {
  if (!pager) return worker.terminate();
  const release = () => {
    const registration = slot.get();
    if (registration === undefined) return;
    try {
      pager.zeroFillPending(registration);
    } catch {
      // Already unregistered (the call ended meanwhile) or closed with its thread.
    }
  };
  release();
  const exited = worker.terminate();
  const timer = setInterval(release, RELEASE_INTERVAL_MS);
  return exited.finally(() => clearInterval(timer));
}
