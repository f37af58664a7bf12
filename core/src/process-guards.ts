/**
 * What a long-running Flurry process (gateway, worker host) does with an
 * error nothing caught: log it and serve on. One bad message or request must
 * not end every call, job and service instance the process holds.
 *
 *   serveOnUncaught(log);
 *
 * Serving on is safe for what throws here in practice: a callback (a NATS
 * subscription, a timer, a stream) that failed part-way through one message;
 * the state it left is that one message's. It is not safe when the errors keep
 * coming (a loop failing on every tick, state corrupted for good): past
 * MAX_UNCAUGHT_PER_MINUTE the process exits with status 1, and its supervisor
 * (infra/src/supervisor.ts) starts a fresh one, as for any crash.
 */
import type { Logger } from './log.js';

const MAX_UNCAUGHT_PER_MINUTE = 100;

export function serveOnUncaught(log: Logger): void {
  let windowStart = Date.now();
  let inWindow = 0;
  const tooMany = (): boolean => {
    const now = Date.now();
    if (now - windowStart > 60_000) {
      windowStart = now;
      inWindow = 0;
    }
    return ++inWindow > MAX_UNCAUGHT_PER_MINUTE;
  };
  // A promise nobody awaited that failed is a bug to log, not a reason to drop every call and instance this process holds.
  process.on('unhandledRejection', (err) => {
    log.error({ err }, 'unhandled rejection; serving on');
    if (tooMany()) exit(log);
  });
  process.on('uncaughtException', (err) => {
    log.error({ err }, 'uncaught exception; serving on');
    if (tooMany()) exit(log);
  });
}

function exit(log: Logger): never {
  log.fatal({ limit: MAX_UNCAUGHT_PER_MINUTE }, 'more uncaught errors in a minute than a sound process has; exiting for a fresh start');
  log.flush?.();
  process.exit(1);
}
