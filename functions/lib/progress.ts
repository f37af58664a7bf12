// Progress of a job clone's `run`, shown in the job's progress bar. The host
// ignores it during `handle`. Report now and then, not per item.

import { progress } from "./abi";

/** Reports that `done` of `total` units of work are finished. */
export function reportProgress(done: i32, total: i32): void {
  progress(done, total);
}
