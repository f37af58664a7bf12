/**
 * The service-instances quota: a tenant's services may together scale to at
 * most `quota` instances, counted as the sum of their `max` from the service
 * records (the autoscaler never goes past a service's max, so that sum
 * bounds what the tenant can hold). Checked when a service is created or its
 * `max` changes; two gateways doing that for one tenant at the same moment
 * can both pass.
 *
 *   checkServiceInstances(64, [{ name: 'a', max: 60 }], 'b', 8); // throws quota_exceeded
 */
import { FlurryError } from '@flurry/core';

/** Throws `quota_exceeded` when service `name` at `max` would take its tenant's services past `quota` instances (0: no limit). */
export function checkServiceInstances(quota: number, services: readonly { name: string; max: number }[], name: string, max: number): void {
  if (quota === 0) return;
  let others = 0;
  for (const s of services) if (s.name !== name) others += s.max;
  if (others + max > quota) {
    throw new FlurryError(
      'quota_exceeded',
      `service "${name}" with max ${max} would let this tenant's services reach ${others + max} instances; the limit is ${quota} (FLURRY_QUOTA_SERVICE_INSTANCES): lower a service's max or delete one`,
    );
  }
}
