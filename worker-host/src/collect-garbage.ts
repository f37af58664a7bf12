/**
 * A full garbage collection of the calling isolate (main thread or guest
 * thread), on demand. A migration's rounds pass hundreds of MiB of page
 * buffers through both hosts, and the external-memory pressure they leave
 * makes V8 run 10-25 ms mark-compacts for a while afterwards; one of them
 * landing in the stop-and-copy pause was most of the pause. Collecting just
 * before the stop moves that work out of the pause.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (!gc) {
    // `gc` exists only in contexts made after the flag is set; nothing else changes.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
