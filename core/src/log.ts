/**
 * pino loggers for services: one JSON line per event, with the service and its
 * id on every line, and no secret in any line (redact.ts: secret fields by
 * name, credentials inside URLs, nkey seeds and JWTs wherever they appear).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { censorSecret, SECRET_LOG_PATHS, withoutCredentials } from './redact.js';

export type { Logger } from 'pino';

/** A logger writing to stdout, or to `destination` (tests read what would be written). */
export function createLogger(service: string, bindings: Record<string, unknown>, level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: SECRET_LOG_PATHS, censor: censorSecret },
    hooks: { streamWrite: withoutCredentials },
  };
  return destination ? pino(options, destination) : pino(options);
}
