/**
 * Instance threads: where a host's persistent (service) instances live,
 * apart from the guest pool's call threads.
 *
 * A request that runs past its time limit can only be stopped by tearing its
 * thread down, and every instance in that thread goes with it. So calls,
 * clones and inits never run on a thread holding instances, and each
 * instance thread belongs to one tenant: only that tenant's instances live
 * there, and a timeout there can destroy no other tenant's. A tenant's
 * instances share its threads up to INSTANCES_PER_THREAD each (a timeout
 * takes at most that many down); beyond that the tenant gets a thread of its
 * own more, up to the host's limit for all tenants together
 * (FLURRY_INSTANCE_THREADS). The pool stops a thread once it holds no
 * instance, and keeps one empty thread started ahead (within the limit) for
 * the next tenant that needs one: a thread takes about 150 ms to boot, an
 * instance on a running thread under a millisecond.
 */
import { FlurryError } from '@flurry/core';

/** A tenant's instances share one thread up to this many, then it gets another. */
export const INSTANCES_PER_THREAD = 4;

/** How long a placement refused for want of an instance thread is told to wait: instances are destroyed or migrate away over seconds. */
export const NO_INSTANCE_THREAD_RETRY_AFTER_S = 2;

/**
 * What a thread is reckoned to cost outside the memory budget: its V8 isolate
 * and heap, compiled code and a spare clone. A thread with one small instance
 * (functions/room) measured about 14 MiB of resident memory; larger modules
 * compile to more code.
 */
export const INSTANCE_THREAD_OVERHEAD_BYTES = 32 * 1024 * 1024;

/** An instance thread as placement sees it. */
export interface TenantThread {
  /** Whose instances it holds. */
  readonly tenant: string;
  /** Instances it holds or is making. */
  readonly load: number;
}

/**
 * Where `tenant`'s next instance goes: its thread with the fewest instances
 * while one has room, else a new thread of its own ('new'). Refused with
 * no_capacity (and a retry hint) when that would pass `maxThreads` threads on
 * the host.
 *
 *     chooseInstanceThread([{ tenant: 'a', load: 4 }, { tenant: 'b', load: 1 }], 'a', 8) // 'new'
 */
export function chooseInstanceThread<T extends TenantThread>(threads: readonly T[], tenant: string, maxThreads: number, perThread = INSTANCES_PER_THREAD): T | 'new' {
  let fewest: T | undefined;
  for (const t of threads) if (t.tenant === tenant && t.load < perThread && (fewest === undefined || t.load < fewest.load)) fewest = t;
  if (fewest) return fewest;
  if (threads.length < maxThreads) return 'new';
  throw new FlurryError(
    'no_capacity',
    `this host runs its most instance threads (${maxThreads}, FLURRY_INSTANCE_THREADS) and none of this tenant's has room for another instance (${perThread} each)`,
    { retryAfterSeconds: NO_INSTANCE_THREAD_RETRY_AFTER_S },
  );
}

/**
 * FLURRY_INSTANCE_THREADS when not set: instance threads may take a quarter
 * of the memory the host's budget leaves of the machine (the rest runs
 * clones, the process and the system), between 2 and 256 threads.
 *
 *     defaultInstanceThreads(16 * GiB, 8 * GiB) // 64
 */
export function defaultInstanceThreads(machineBytes: number, budgetBytes: number): number {
  const room = Math.max(0, machineBytes - budgetBytes) / 4;
  return Math.min(256, Math.max(2, Math.floor(room / INSTANCE_THREAD_OVERHEAD_BYTES)));
}
