/**
 * Where the gateway's API keys come from, read once at start:
 *
 * - FLURRY_API_KEYS_FILE: a JSON file of key digests (core/src/api-keys.ts);
 * - FLURRY_API_KEYS: `key=tenant` (a user key), `key=tenant:admin`,
 *   `key=tenant:user`, comma-separated; a bare `key` is a user of the default
 *   tenant. Hashed here; no key is kept.
 *
 * Both may be given. Without any key the gateway refuses to start unless
 * FLURRY_AUTH=none says to run without authentication.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, DEFAULT_TENANT, EnvReader, hashApiKey, inlineKeyItems, NAME_PATTERN, parseApiKeyFile, ROLES, type ApiKeyEntry, type Role } from '@flurry/core';
import { KeyRing } from './key-ring.js';

/** Shorter keys in FLURRY_API_KEYS are refused (generated keys are 47 characters). */
const MIN_KEY_LENGTH = 8;

export function loadKeyRing(env: Record<string, string | undefined>): KeyRing {
  const r = new EnvReader(env);
  const mode = r.oneOf('FLURRY_AUTH', ['keys', 'none'] as const, 'keys');
  const file = r.optionalString('FLURRY_API_KEYS_FILE');
  const inline = r.optionalString('FLURRY_API_KEYS');
  if (mode === 'none') {
    if (file !== undefined || inline !== undefined) throw new ConfigError('FLURRY_AUTH=none, yet API keys are given (FLURRY_API_KEYS or FLURRY_API_KEYS_FILE): choose one');
    return KeyRing.none();
  }
  const entries = [...(file === undefined ? [] : keysFromFile(file)), ...(inline === undefined ? [] : parseInlineKeys(inline))];
  if (entries.length === 0) {
    throw new ConfigError(
      'no API keys: give FLURRY_API_KEYS_FILE or FLURRY_API_KEYS (docs/api.md, "Authentication"), or set FLURRY_AUTH=none to run without authentication (every caller is then admin of the default tenant)',
    );
  }
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.sha256)) throw new ConfigError('the same API key is given twice (in FLURRY_API_KEYS_FILE and FLURRY_API_KEYS, or twice in one)');
    seen.add(e.sha256);
  }
  return KeyRing.withKeys(entries);
}

function keysFromFile(path: string): ApiKeyEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`FLURRY_API_KEYS_FILE: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseApiKeyFile(text, `FLURRY_API_KEYS_FILE ${path}`);
}

/** `key=tenant[:role]`, comma-separated. Errors name the item's position, never the key. */
export function parseInlineKeys(value: string): ApiKeyEntry[] {
  return inlineKeyItems(value).map(({ key, owner = DEFAULT_TENANT }, i) => {
    const at = `FLURRY_API_KEYS item ${i + 1}`;
    const [tenant, role = 'user', ...rest] = owner.split(':');
    if (key.length < MIN_KEY_LENGTH) throw new ConfigError(`${at}: each key must be at least ${MIN_KEY_LENGTH} characters`);
    if (!NAME_PATTERN.test(tenant) || rest.length > 0) throw new ConfigError(`${at}: expected key=tenant or key=tenant:role, with a tenant matching ${NAME_PATTERN}`);
    if (!(ROLES as readonly string[]).includes(role)) throw new ConfigError(`${at}: role "${role}" must be one of ${ROLES.join(', ')}`);
    return { tenant, role: role as Role, sha256: hashApiKey(key) };
  });
}
