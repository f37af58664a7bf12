/**
 * The calling thread's own time waiting for a core (runnable, not running), read
 * from Linux's `/proc/thread-self/schedstat` through a descriptor opened once
 * (about 2.4 µs a read on this project's machines). A benchmark's client reads
 * it around each call to tell its own wait from the system's under test.
 *
 *     const wait = ownRunQueueWait();
 *     const w0 = wait?.readNs();
 *     await call();
 *     const waitedNs = wait ? wait.readNs() - w0! : undefined;
 *     wait?.close();
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface OwnRunQueueWait {
  /** Nanoseconds this thread has waited on a run queue since it started. */
  readNs(): number;
  close(): void;
}

/** A reader for the calling thread, or undefined where the kernel keeps no such count (not Linux, no schedstats). */
export function ownRunQueueWait(): OwnRunQueueWait | undefined {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(96);
  const readNs = (): number => runQueueWaitNs(buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0)));
  try {
    readNs();
  } catch {
    closeSync(fd);
    return undefined;
  }
  return { readNs, close: () => closeSync(fd) };
}

/** The run-queue wait of a schedstat line: three whole numbers, time on a core and time waiting (both ns), time slices. */
export function runQueueWaitNs(schedstat: string): number {
  const fields = schedstat.trim().split(' ');
  if (fields.length !== 3 || !fields.every((f) => /^\d+$/.test(f))) throw new Error(`a schedstat line is three whole numbers, got ${JSON.stringify(schedstat)}`);
  return Number(fields[1]);
}
