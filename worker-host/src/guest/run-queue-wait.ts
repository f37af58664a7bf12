/**
 * How long the calling thread has waited for a core: the kernel's count of
 * the time it was runnable but not running (`run_delay`, the second field of
 * /proc/thread-self/schedstat, in ns). A thread that waited lately is on a
 * machine whose cores are all taken, where a thread that polls takes a core
 * from the threads it waits for (thread-mailbox.ts).
 *
 *     const wait = RunQueueWait.open();
 *     wait?.sinceLastUs(); // µs waited since the previous reading (the first: since the thread began)
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** A schedstat line: three decimal counters (ns, ns, slices) and spaces; 96 bytes hold them with room. */
const LINE_BYTES = 96;
const SPACE = 0x20;
const ZERO = 0x30;

export class RunQueueWait {
  private readonly line = Buffer.alloc(LINE_BYTES);
  private lastNs = 0;

  private constructor(private readonly fd: number) {}

  /**
   * The calling thread's counter (the file names the thread that opens it), or undefined where the kernel has none
   * (not Linux, no schedstats). Node closes the descriptors a worker thread opened when the thread ends.
   */
  static open(): RunQueueWait | undefined {
    let fd: number;
    try {
      fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      return undefined;
    }
    const wait = new RunQueueWait(fd);
    if (wait.readNs() === undefined) {
      closeSync(fd);
      return undefined;
    }
    return wait;
  }

  /** µs the thread waited for a core since the previous call. */
  sinceLastUs(): number {
    const ns = this.readNs() ?? this.lastNs;
    const waited = ns - this.lastNs;
    this.lastNs = ns;
    return waited / 1000;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The second field, parsed in place (no string made: this runs each time the thread goes idle). */
  private readNs(): number | undefined {
    const n = readSync(this.fd, this.line, 0, LINE_BYTES, 0);
    return parseSecondField(this.line, n);
  }
}

/** The second space-separated decimal field of `bytes[0, length)`, or undefined if there is none. */
export function parseSecondField(bytes: Uint8Array, length: number): number | undefined {
  let i = 0;
  while (i < length && bytes[i] !== SPACE) i++;
  i++;
  let value = 0;
  let digits = 0;
  for (; i < length; i++) {
    const d = bytes[i] - ZERO;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
    digits++;
  }
  return digits > 0 ? value : undefined;
}
