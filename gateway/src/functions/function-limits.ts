/**
 * A function's own limits (timeout, memory, output) against the fleet's caps:
 * what `PATCH /v1/functions/:name` accepts, what a deploy keeps, and what the
 * hosts are told for each call. Pure functions, tested without a fleet.
 *
 *   checkLimits({ timeoutMs: 2000 }, caps);              // ok
 *   checkLimits({ timeoutMs: 999_999 }, caps);           // bad_request naming FLURRY_INVOKE_TIMEOUT_MS
 */
import { FlurryError, WASM_PAGE_SIZE, type FunctionLimits, type FunctionRecord, type InvokeLimits } from '@flurry/core';

/** The most any function may set, from the gateway's configuration. */
export interface LimitCaps {
  /** FLURRY_INVOKE_TIMEOUT_MS: the gateway stops waiting for an answer then, so no call may run longer. */
  timeoutMs: number;
  /** FLURRY_MAX_GUEST_MEMORY: no module may declare more. */
  memoryBytes: number;
  /** FLURRY_MAX_OUTPUT: the hosts' own output limit (give both the same value). */
  outputBytes: number;
}

const CAP_NAMES: Record<keyof LimitCaps, string> = {
  timeoutMs: 'FLURRY_INVOKE_TIMEOUT_MS',
  memoryBytes: 'FLURRY_MAX_GUEST_MEMORY',
  outputBytes: 'FLURRY_MAX_OUTPUT',
};

/** The least each may be (what a FunctionRecord holds: core/src/schemas.ts): a call's time, one wasm page, 1 KiB of answer. */
const FLOORS: LimitCaps = { timeoutMs: 1, memoryBytes: WASM_PAGE_SIZE, outputBytes: 1024 };

/** Refuses a limit below its floor or above its cap, naming the cap and the variable that sets it. */
export function checkLimits(limits: FunctionLimits, caps: LimitCaps): void {
  for (const key of Object.keys(CAP_NAMES) as (keyof LimitCaps)[]) {
    const value = limits[key];
    if (value !== undefined && value < FLOORS[key]) throw new FlurryError('bad_request', `limits.${key} ${value} is below the least allowed, ${FLOORS[key]}`);
    if (value !== undefined && value > caps[key]) {
      throw new FlurryError('bad_request', `limits.${key} ${value} exceeds the fleet's cap of ${caps[key]} (${CAP_NAMES[key]})`);
    }
  }
}

/** Refuses a module whose declared memory maximum is above the function's memory limit (the engine then stops every grow at the limit). */
export function checkModuleMemory(name: string, maximumPages: number, limits: FunctionLimits | undefined): void {
  const limit = limits?.memoryBytes;
  if (limit === undefined) return;
  const declared = maximumPages * WASM_PAGE_SIZE;
  if (declared > limit) {
    throw new FlurryError('bad_request', `function "${name}": its module declares a memory maximum of ${declared} bytes (${maximumPages} pages), above its limits.memoryBytes ${limit}; build it with a lower maximum or raise the limit`);
  }
}

/** What the hosts apply to one call of `fn`; undefined when it has no limit of its own for calls. */
export function invokeLimitsOf(fn: FunctionRecord): InvokeLimits | undefined {
  const { timeoutMs, outputBytes } = fn.limits ?? {};
  if (timeoutMs === undefined && outputBytes === undefined) return undefined;
  return { ...(timeoutMs !== undefined && { timeoutMs }), ...(outputBytes !== undefined && { outputBytes }) };
}
