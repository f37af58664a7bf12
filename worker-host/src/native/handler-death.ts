/** The native pager's fault handler thread dying, told to every listener of a thread (the addon has one callback per thread). */
import type { NativePager } from './pager.js';

/** Listeners of one thread for the handler thread's death, behind the addon's single callback per thread. */
interface DeathWatch {
  listeners: Set<(reason: string) => void>;
  reason?: string;
}
const deathWatches = new WeakMap<NativePager, DeathWatch>();

/**
 * Calls `listener` once, on this thread, with why the pager's fault handler
 * thread died: from then on no fault of any lazy memory in the process is
 * served, so whatever pages lazily must stop its clones. Every page cache of
 * a host listens; one death reaches them all. A listener added after the
 * death hears of it at once (on a microtask). Returns the unsubscribe.
 *
 * @example
 * const stop = onHandlerDeath(pager, (reason) => pool.abort(key, new Error(reason)));
 * stop(); // once nothing of this listener's pages lazily any more
 */
export function onHandlerDeath(pager: NativePager, listener: (reason: string) => void): () => void {
  const watch = deathWatches.get(pager) ?? watchDeath(pager);
  watch.listeners.add(listener);
  if (watch.reason !== undefined) queueMicrotask(() => tell(watch, listener));
  return () => void watch.listeners.delete(listener);
}

function watchDeath(pager: NativePager): DeathWatch {
  const watch: DeathWatch = { listeners: new Set() };
  pager.setHandlerDeathHandler((reason) => {
    watch.reason = reason;
    for (const listener of [...watch.listeners]) tell(watch, listener);
  });
  deathWatches.set(pager, watch);
  return watch;
}

/** Once per listener; one that throws does not keep the death from the others. */
function tell(watch: DeathWatch, listener: (reason: string) => void): void {
  if (!watch.listeners.delete(listener)) return;
  try {
    listener(watch.reason!);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
