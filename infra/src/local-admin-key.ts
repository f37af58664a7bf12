/**
 * The local fleet's admin key (`npm start`): made once and kept in the
 * fleet's state folder, as the key itself in `admin.key` (mode 0600: the CLI
 * finds it there, sdk/src/local-fleet-key.ts) and as its SHA-256 in
 * `api-keys.json`, the key file the gateway reads (FLURRY_API_KEYS_FILE).
 * Keys an operator adds to that file stay; the admin key is added back if
 * it was removed.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiKeyFileText, DEFAULT_TENANT, hashApiKey, newApiKey, parseApiKeyFile } from '@flurry/core';

/** The CLI looks for this name (sdk/src/local-fleet-key.ts). */
const KEY_FILE = 'admin.key';
const KEYS_FILE = 'api-keys.json';

export interface LocalAdminKey {
  key: string;
  /** Where the key is kept (mode 0600). */
  keyPath: string;
  /** The hashed key file for the gateway's FLURRY_API_KEYS_FILE. */
  keysFile: string;
  /** Made by this call (first start), not found. */
  created: boolean;
}

export function ensureLocalAdminKey(dataDir: string): LocalAdminKey {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keyPath = join(dataDir, KEY_FILE);
  let key = existsSync(keyPath) ? readFileSync(keyPath, 'utf8').trim() : '';
  const created = key === '';
  if (created) {
    key = newApiKey();
    writeFileSync(keyPath, `${key}\n`, { mode: 0o600 });
  }
  // A key file copied or restored with looser permissions is tightened.
  chmodSync(keyPath, 0o600);

  const keysFile = join(dataDir, KEYS_FILE);
  const entries = existsSync(keysFile) ? parseApiKeyFile(readFileSync(keysFile, 'utf8'), keysFile) : [];
  const sha256 = hashApiKey(key);
  if (!entries.some((e) => e.sha256 === sha256)) {
    entries.push({ tenant: DEFAULT_TENANT, role: 'admin', sha256, label: 'local admin (npm start)' });
    // Written whole and renamed: a gateway starting meanwhile never reads half a file.
    const partial = `${keysFile}.${process.pid}.tmp`;
    writeFileSync(partial, apiKeyFileText(entries), { mode: 0o600 });
    renameSync(partial, keysFile);
  }
  return { key, keyPath, keysFile, created };
}
