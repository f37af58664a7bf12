/** The gateway's record shapes, as the SDK's own public types (copied from core's protocol so the SDK has no runtime dependency on it). */

/**
 * Error codes the gateway puts in `{ "error": { "code" } }` and in the `x-flurry-error` header.
 *
 * @example
 * if (err instanceof FlurryApiError && err.code === 'no_capacity') await sleep(err.retryAfterSeconds ?? 1);
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_module'
  | 'unauthorized'
  | 'not_found'
  | 'payload_too_large'
  | 'timeout'
  | 'guest_trap'
  | 'guest_error'
  | 'output_limit'
  | 'no_capacity'
  | 'unavailable'
  | 'internal';

/**
 * A deployed function. Times are milliseconds since the Unix epoch.
 *
 * @example
 * const fn: FunctionRecord = await flurry.functions.get('hello');
 * console.log(fn.digest.slice(0, 12), fn.exports.includes('handle'));
 */
export interface FunctionRecord {
  tenant: string;
  name: string;
  /** SHA-256 of the module bytes, lower-case hex. */
  digest: string;
  /** Module size in bytes. */
  size: number;
  /** Entry points the module exports (`init`, `handle`, `run`, ...). */
  exports: string[];
  /** Linear memory size in 64 KiB wasm pages. */
  memory: { initialPages: number; maximumPages: number };
  createdAt: number;
  updatedAt: number;
}

/**
 * A worker host, as it last reported itself. Times are milliseconds since the Unix epoch.
 *
 * @example
 * const free = (await flurry.hosts.list()).reduce((n, h) => n + h.guestSlots - h.runningGuests, 0);
 */
export interface HostRecord {
  id: string;
  pid: number;
  hostname: string;
  startedAt: number;
  heartbeatAt: number;
  cores: number;
  memoryBytes: number;
  /** Guest threads in the host's pool. */
  guestSlots: number;
  /** Guest calls running now. */
  runningGuests: number;
  /** Functions the host holds warm parents of. */
  warm: WarmFunction[];
  /** `userfaultfd` when the native pager works on the host, else `portable`. */
  pager: 'userfaultfd' | 'portable';
  /** True once the host has begun draining: nothing new is placed on it. */
  draining: boolean;
}

/**
 * A function a host holds a warm parent of.
 *
 * @example
 * const warmHosts = hosts.filter((h) => h.warm.some((w: WarmFunction) => w.name === 'hello'));
 */
export interface WarmFunction {
  tenant: string;
  name: string;
  digest: string;
}
