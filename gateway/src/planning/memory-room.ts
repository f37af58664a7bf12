/**
 * Room in hosts' memory budgets (FLURRY_HOST_MEMORY_BUDGET), as their records
 * report it, for placement to prefer hosts that can take more. A full host is
 * tried last, not skipped: its record may be a heartbeat old, and it may make
 * room by evicting idle parents; if it cannot, it answers no_capacity and the
 * next host is tried.
 */
import { WASM_PAGE_SIZE, type FunctionRecord, type HostRecord } from '@flurry/core';

/** Free bytes of a host's budget; a host that reports none counts as roomy. */
export function memoryRoom(host: HostRecord): number {
  const b = host.memoryBudget;
  return b ? b.budgetBytes - b.usedBytes : Number.POSITIVE_INFINITY;
}

/** The least a new parent of `fn` holds: its declared initial memory. */
export function initialMemoryOf(fn: FunctionRecord | undefined): number {
  return (fn?.memory?.initialPages ?? 0) * WASM_PAGE_SIZE;
}

/** A sort comparator putting hosts with room for `bytes` before those without (a stable sort keeps the rest of the order). */
export function roomFirst(bytes: number): (a: HostRecord, b: HostRecord) => number {
  const fits = (h: HostRecord) => (memoryRoom(h) > bytes ? 1 : 0);
  return (a, b) => fits(b) - fits(a);
}
