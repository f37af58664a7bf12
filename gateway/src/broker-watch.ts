/**
 * Work that needs the broker: refused at once (503 `unavailable`) while it is
 * away, and ended with `unavailable` when it goes away before the work settles
 * (its outcome is then unknown), instead of waiting for a timeout.
 */
import type { BrokerLink } from '@flurry/core';

export async function whileBrokerUp<T>(link: BrokerLink, work: () => Promise<T>): Promise<T> {
  link.assertUp();
  const watch = link.nextOutage();
  const working = work();
  // Lost to an outage, the work still settles later: its failure then has nobody to tell.
  working.catch(() => undefined);
  try {
    return await Promise.race([working, watch.outage]);
  } finally {
    watch.cancel();
  }
}
