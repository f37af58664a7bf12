/**
 * Per-tenant quotas (docs/configuration.md, "Quotas"): what one tenant may
 * hold or send at once, read from the environment with the defaults a shared
 * fleet ships with. 0 turns a quota off.
 *
 * Concurrent calls and the request rate are counted by each gateway process
 * on its own (behind N gateways a tenant gets N times as much); running jobs
 * and clones, service instances and stored data are counted from the shared
 * records, so they hold across gateways.
 */
import { EnvReader } from '@flurry/core';

export interface TenantQuotas {
  /** Calls (`/fn`, `/v1/functions/:name/invoke`, `/svc`) one tenant has in flight at this gateway. */
  concurrentCalls: number;
  /** Requests per second one tenant may send to this gateway, on average (a token bucket)... */
  requestsPerSecond: number;
  /** ...and at once after a quiet spell (the bucket's size). */
  requestBurst: number;
  /** Jobs of one tenant not yet finished. */
  runningJobs: number;
  /** Clones of one tenant's unfinished jobs, all counted until their job ends. */
  runningClones: number;
  /** Service instances one tenant's services may scale to: the sum of their `max`. */
  serviceInstances: number;
  /** Bytes of uploaded data (/v1/data) one tenant may keep. */
  dataBytes: number;
}

/**
 * The defaults, and why: 64 calls in flight are the guest threads of a
 * handful of hosts, enough for any one tenant's interactive traffic and small
 * beside the fleet, and they are what bounds a tenant's share of the guests;
 * the request rate bounds a flood of cheap requests that hold no guest
 * (listings, reads, refusals): 10,000 a second, as AWS API Gateway's account
 * default, with a burst of two seconds' worth; 16 jobs and
 * 4096 clones are four of the largest jobs (1024 clones) or many small ones;
 * 64 service instances are one service at its largest; 2 GiB of data is two
 * of the largest uploads (FLURRY_MAX_DATA_BYTES), and JetStream reserves it
 * on disk for every tenant that uploads (store-limits.ts).
 */
export const DEFAULT_TENANT_QUOTAS: TenantQuotas = {
  concurrentCalls: 64,
  requestsPerSecond: 10_000,
  requestBurst: 20_000,
  runningJobs: 16,
  runningClones: 4096,
  serviceInstances: 64,
  dataBytes: 2 * 1024 ** 3,
};

export function loadTenantQuotas(r: EnvReader): TenantQuotas {
  const d = DEFAULT_TENANT_QUOTAS;
  const requestsPerSecond = r.int('FLURRY_QUOTA_REQUESTS_PER_S', d.requestsPerSecond, { min: 0, max: 10_000_000 });
  return {
    concurrentCalls: r.int('FLURRY_QUOTA_CONCURRENT_CALLS', d.concurrentCalls, { min: 0, max: 1_000_000 }),
    requestsPerSecond,
    // Two seconds' worth unless given: a burst below one second's worth would refuse a steady sender within its rate.
    requestBurst: r.int('FLURRY_QUOTA_REQUESTS_BURST', Math.max(1, requestsPerSecond * 2), { min: 1, max: 100_000_000 }),
    runningJobs: r.int('FLURRY_QUOTA_RUNNING_JOBS', d.runningJobs, { min: 0, max: 1_000_000 }),
    runningClones: r.int('FLURRY_QUOTA_RUNNING_CLONES', d.runningClones, { min: 0, max: 100_000_000 }),
    serviceInstances: r.int('FLURRY_QUOTA_SERVICE_INSTANCES', d.serviceInstances, { min: 0, max: 1_000_000 }),
    dataBytes: r.bytes('FLURRY_QUOTA_DATA_BYTES', d.dataBytes, { min: 0, max: 1024 ** 5 }),
  };
}
