// `npm start`'s admin key: made once with mode 0600, its digest in the key
// file the gateway reads, kept across starts, and operators' own keys kept.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiKeyFileText, hashApiKey, parseApiKeyFile } from '@flurry/core';
import { ensureLocalAdminKey } from './local-admin-key.js';

const dir = mkdtempSync(join(tmpdir(), 'flurry-admin-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('local admin key', () => {
  it('admin key - made once, readable by its owner only, hashed in the key file; the same key on the next start', () => {
    const first = ensureLocalAdminKey(join(dir, 'a'));
    expect(first.created).toBe(true);
    expect(first.key).toMatch(/^flk_[\w-]{43}$/);
    expect(statSync(first.keyPath).mode & 0o777).toBe(0o600);
    const text = readFileSync(first.keysFile, 'utf8');
    expect(text).not.toContain(first.key);
    expect(parseApiKeyFile(text, 'keys')).toEqual([{ tenant: 'default', role: 'admin', sha256: hashApiKey(first.key), label: 'local admin (npm start)' }]);
    const again = ensureLocalAdminKey(join(dir, 'a'));
    expect(again).toMatchObject({ key: first.key, created: false });
    expect(readFileSync(again.keysFile, 'utf8')).toBe(text);
  });

  it('admin key - keys an operator added to the file stay; a removed admin digest is added back', () => {
    const made = ensureLocalAdminKey(join(dir, 'b'));
    const user = { tenant: 'alice', role: 'user' as const, sha256: hashApiKey('alice-key-123456') };
    writeFileSync(made.keysFile, apiKeyFileText([user]));
    ensureLocalAdminKey(join(dir, 'b'));
    expect(parseApiKeyFile(readFileSync(made.keysFile, 'utf8'), 'keys').map((e) => e.tenant)).toEqual(['alice', 'default']);
  });
});
