/**
 * The best few of many by one scan: a placement tries at most a few hosts
 * (HOSTS_TRIED), so keeping a short sorted list while reading every host once
 * costs O(hosts × limit) instead of sorting all of them.
 */

/** Hosts a placement asks in turn before it gives up (a host may refuse: full, or gone since its heartbeat). */
export const HOSTS_TRIED = 3;

/**
 * The first `limit` items of `items` in the order `compare` gives, as a stable
 * sort followed by `slice(0, limit)` would return them (ties keep the items' order).
 *
 *   bestOf([5, 1, 4, 2], (a, b) => a - b, 2) // [1, 2]
 */
export function bestOf<T>(items: readonly T[], compare: (a: T, b: T) => number, limit: number): T[] {
  const best: T[] = [];
  if (limit <= 0) return best;
  for (const item of items) {
    if (best.length === limit && compare(item, best[limit - 1]!) >= 0) continue;
    let at = best.length;
    while (at > 0 && compare(item, best[at - 1]!) < 0) at--;
    best.splice(at, 0, item);
    if (best.length > limit) best.pop();
  }
  return best;
}
