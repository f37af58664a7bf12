/** The callback settings of the gateway's configuration (docs/configuration.md, "Gateway"). */
import { readFileSync } from 'node:fs';
import { ConfigError, EnvReader } from '@flurry/core';
import { CallbackAllowList } from './callback-address.js';
import { CallbackSecrets } from './callback-signature.js';

export interface CallbackConfig {
  /** Undefined: no master secret configured, so jobs with a callbackUrl are refused. */
  secrets?: CallbackSecrets;
  allow: CallbackAllowList;
  /** Deliveries of one job's callback, the first included. */
  attempts: number;
  /** Wait before the first retry; doubled for each next one, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Time for one delivery, connecting and reading the answer included. */
  timeoutMs: number;
}

/** Shorter master secrets are refused: they could be guessed from one signed delivery. */
const MIN_SECRET_CHARS = 32;

export function loadCallbackConfig(env: Record<string, string | undefined>): CallbackConfig {
  const r = new EnvReader(env);
  return {
    secrets: masterSecret(r.optionalString('FLURRY_CALLBACK_SECRET'), r.optionalString('FLURRY_CALLBACK_SECRET_FILE')),
    allow: CallbackAllowList.parse(r.optionalString('FLURRY_CALLBACK_ALLOW')),
    attempts: r.int('FLURRY_CALLBACK_ATTEMPTS', 5, { min: 1, max: 20 }),
    backoffMs: r.int('FLURRY_CALLBACK_BACKOFF_MS', 2000, { min: 1, max: 3_600_000 }),
    maxBackoffMs: r.int('FLURRY_CALLBACK_MAX_BACKOFF_MS', 60_000, { min: 1, max: 24 * 3_600_000 }),
    timeoutMs: r.int('FLURRY_CALLBACK_TIMEOUT_MS', 10_000, { min: 10, max: 600_000 }),
  };
}

function masterSecret(value: string | undefined, file: string | undefined): CallbackSecrets | undefined {
  if (value !== undefined && file !== undefined) throw new ConfigError('set FLURRY_CALLBACK_SECRET or FLURRY_CALLBACK_SECRET_FILE, not both');
  let secret = value;
  if (file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`FLURRY_CALLBACK_SECRET_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (secret === undefined) return undefined;
  if (secret.length < MIN_SECRET_CHARS) throw new ConfigError(`the callback master secret (FLURRY_CALLBACK_SECRET${file ? '_FILE' : ''}) must be at least ${MIN_SECRET_CHARS} characters`);
  return new CallbackSecrets(secret);
}
