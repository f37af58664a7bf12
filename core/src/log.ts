/** pino loggers for services: one JSON line per event, with the service and its id on every line. */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(service: string, bindings: Record<string, unknown>, level = 'info'): Logger {
  return pino({ level, base: { service, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}
