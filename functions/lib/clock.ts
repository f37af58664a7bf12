// Clocks from the host (a guest has no clock of its own).

import { monotonic_ms, now_ms } from "./abi";

/** Wall clock: milliseconds since the Unix epoch. */
export function nowMs(): f64 {
  return now_ms();
}

/** Monotonic clock in milliseconds, for measuring durations. */
export function monotonicMs(): f64 {
  return monotonic_ms();
}
