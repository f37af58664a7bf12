/**
 * API keys at rest: the key file that the gateway reads (FLURRY_API_KEYS_FILE)
 * and the local fleet launcher writes. The file holds only the SHA-256 of
 * each key, never a key, so reading it does not let anyone call the API:
 *
 *   { "keys": [ { "tenant": "acme", "role": "user", "sha256": "<64 hex>", "label": "ci" } ] }
 *
 * `label` is optional and only for people reading the file. A key is made
 * with `newApiKey()` and hashed with `hashApiKey()` (the same as
 * `printf %s "$KEY" | sha256sum`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConfigError } from './config.js';
import { NAME_PATTERN } from './protocol.js';

/** `admin` runs the fleet (hosts, drains, the consolidation journal, any tenant's instances); `user` only its own tenant's objects. */
export type Role = 'admin' | 'user';
export const ROLES: readonly Role[] = ['admin', 'user'];

/** One key as the gateway keeps it: whose it is and its digest. */
export interface ApiKeyEntry {
  tenant: string;
  role: Role;
  /** SHA-256 of the key, lower-case hex. */
  sha256: string;
  label?: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const FIELDS = new Set(['tenant', 'role', 'sha256', 'label']);

/** A new key: 32 random bytes, base64url, with a prefix that secret scanners and people recognise. */
export function newApiKey(): string {
  return `flk_${randomBytes(32).toString('base64url')}`;
}

/**
 * The items of FLURRY_API_KEYS (`key=tenant[:role]`, comma-separated), each
 * split at its last `=`: a key may end in base64 padding, a tenant never
 * holds one. `owner` is absent for a bare key.
 */
export function inlineKeyItems(value: string): { key: string; owner?: string }[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    const eq = item.lastIndexOf('=');
    return eq < 0 ? { key: item } : { key: item.slice(0, eq), owner: item.slice(eq + 1) };
  });
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Parses a key file's text; `source` (its path) names it in errors, which stop the gateway at start. */
export function parseApiKeyFile(text: string, source: string): ApiKeyEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const list = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) throw new ConfigError(`${source}: expected { "keys": [ { "tenant", "role", "sha256" }, ... ] }`);
  const seen = new Set<string>();
  return list.map((item, i) => {
    const at = `${source}: keys[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ConfigError(`${at} must be an object`);
    const e = item as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!FIELDS.has(k)) throw new ConfigError(`${at} has an unknown field "${k}" (tenant, role, sha256, label)`);
    if (typeof e.tenant !== 'string' || !NAME_PATTERN.test(e.tenant)) throw new ConfigError(`${at}.tenant must match ${NAME_PATTERN}`);
    if (typeof e.role !== 'string' || !(ROLES as readonly string[]).includes(e.role)) throw new ConfigError(`${at}.role must be one of ${ROLES.join(', ')}`);
    if (typeof e.sha256 !== 'string' || !SHA256_HEX.test(e.sha256)) {
      throw new ConfigError(`${at}.sha256 must be the key's SHA-256 in 64 lower-case hex digits (the file holds hashes, never keys)`);
    }
    if (e.label !== undefined && typeof e.label !== 'string') throw new ConfigError(`${at}.label must be a string`);
    // One key for two tenants or roles would make the caller ambiguous.
    if (seen.has(e.sha256)) throw new ConfigError(`${at}: the same key is listed twice`);
    seen.add(e.sha256);
    return { tenant: e.tenant, role: e.role as Role, sha256: e.sha256, ...(e.label === undefined ? {} : { label: e.label }) };
  });
}

export function apiKeyFileText(entries: readonly ApiKeyEntry[]): string {
  return `${JSON.stringify({ keys: entries }, null, 2)}\n`;
}
