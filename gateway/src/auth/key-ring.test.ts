// The gateway's API keys: where they come from (a file of digests, the
// environment), how a request's key is looked up, and the start errors a bad
// configuration gives.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { apiKeyFileText, ConfigError, FlurryError, hashApiKey, newApiKey } from '@flurry/core';
import { KeyRing } from './key-ring.js';
import { loadKeyRing, parseInlineKeys } from './key-sources.js';

// Counts the comparisons a lookup makes (the real function still answers).
const compared = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.count++;
      return real.timingSafeEqual(a, b);
    },
  };
});

const dir = mkdtempSync(join(tmpdir(), 'flurry-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function startError(env: Record<string, string>): string {
  try {
    loadKeyRing(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the configuration was accepted');
}

function refusal(ring: KeyRing, authorization: string | undefined): string {
  try {
    ring.identify(authorization);
  } catch (err) {
    expect(err).toBeInstanceOf(FlurryError);
    return (err as FlurryError).code;
  }
  throw new Error('the key was accepted');
}

const ADMIN = newApiKey();
const ALICE = newApiKey();
const BOB = 'bob-key-0123456789';

describe('key ring', () => {
  const file = keyFile('keys.json', apiKeyFileText([
    { tenant: 'ops', role: 'admin', sha256: hashApiKey(ADMIN), label: 'operator' },
    { tenant: 'alice', role: 'user', sha256: hashApiKey(ALICE) },
  ]));

  it('file - a file of digests gives each key its tenant and role, and holds no key', () => {
    const ring = loadKeyRing({ FLURRY_API_KEYS_FILE: file });
    expect(ring.identify(`Bearer ${ADMIN}`)).toEqual({ tenant: 'ops', role: 'admin' });
    expect(ring.identify(`bearer ${ALICE}`)).toEqual({ tenant: 'alice', role: 'user' });
    expect(ring.describe()).toBe('2 keys (1 admin, 1 user)');
    expect(JSON.stringify(ring)).not.toContain(ALICE);
  });

  it('env - key=tenant is a user, key=tenant:admin an admin, a bare key a user of the default tenant; hashed at load', () => {
    const entries = parseInlineKeys(`${BOB}=bob, ${ADMIN}=ops:admin,lonely-key-42, padded-key-AB==x:user`);
    expect(entries.map(({ tenant, role }) => ({ tenant, role }))).toEqual([
      { tenant: 'bob', role: 'user' }, { tenant: 'ops', role: 'admin' }, { tenant: 'default', role: 'user' }, { tenant: 'x', role: 'user' },
    ]);
    expect(entries[0].sha256).toBe(hashApiKey(BOB));
    expect(JSON.stringify(entries)).not.toContain(BOB);
    const ring = loadKeyRing({ FLURRY_API_KEYS: `${BOB}=bob`, FLURRY_API_KEYS_FILE: file });
    expect(ring.identify(`Bearer ${BOB}`)).toEqual({ tenant: 'bob', role: 'user' });
    expect(ring.identify(`Bearer ${ALICE}`)).toEqual({ tenant: 'alice', role: 'user' });
    expect(loadKeyRing({ FLURRY_API_KEYS: 'padded-key-AB==x' }).identify('Bearer padded-key-AB=')).toEqual({ tenant: 'x', role: 'user' });
  });

  it('unknown - no header, another scheme, an unknown key, a prefix or an extension of a key: 401', () => {
    const ring = loadKeyRing({ FLURRY_API_KEYS_FILE: file });
    for (const h of [undefined, '', 'Bearer', `Basic ${ALICE}`, `Bearer ${ALICE.slice(0, -1)}`, `Bearer ${ALICE}x`, `Bearer ${ALICE} extra`, `Bearer ${'k'.repeat(100_000)}`]) {
      expect(refusal(ring, h)).toBe('unauthorized');
    }
  });

  it('constant time - a lookup compares the digest with every key that shares its first two bytes, found first, last or not at all', () => {
    // Keys until four share a digest prefix (a few thousand tries): three in the ring, the fourth a wrong guess.
    const byPrefix = new Map<string, string[]>();
    let same: string[] = [];
    while (same.length < 4) {
      const k = newApiKey();
      const prefix = hashApiKey(k).slice(0, 4);
      same = [...(byPrefix.get(prefix) ?? []), k];
      byPrefix.set(prefix, same);
    }
    const [first, second, third, wrong] = same;
    // Others of another prefix (one of 50 random keys shares it about once in 1,300 runs).
    const prefixOf = (k: string) => hashApiKey(k).slice(0, 4);
    const others: string[] = [];
    while (others.length < 50) {
      const k = newApiKey();
      if (prefixOf(k) !== prefixOf(first)) others.push(k);
    }
    const ring = KeyRing.withKeys([first, ...others, second, third].map((k, i) => ({ tenant: `t${i}`, role: 'user', sha256: hashApiKey(k) })));
    for (const key of [first, third, wrong]) {
      compared.count = 0;
      try {
        ring.identify(`Bearer ${key}`);
      } catch {
        // The wrong guess is refused after the same comparisons.
      }
      expect(compared.count).toBe(3);
    }
    expect(ring.identify(`Bearer ${third}`)).toEqual({ tenant: 't52', role: 'user' });
    expect(refusal(ring, `Bearer ${wrong}`)).toBe('unauthorized');
  });

  it('no auth - FLURRY_AUTH=none makes every caller admin of the default tenant, whatever it sends', () => {
    const ring = loadKeyRing({ FLURRY_AUTH: 'none' });
    expect(ring.required).toBe(false);
    expect(ring.identify(undefined)).toEqual({ tenant: 'default', role: 'admin' });
    expect(ring.identify('Bearer anything')).toEqual({ tenant: 'default', role: 'admin' });
  });

  it('start errors - no keys, contradicting settings and bad files stop the gateway with a message naming the cause, never a key', () => {
    expect(startError({})).toMatch(/no API keys: give FLURRY_API_KEYS_FILE or FLURRY_API_KEYS .* or set FLURRY_AUTH=none/);
    expect(startError({ FLURRY_AUTH: 'none', FLURRY_API_KEYS: `${BOB}=bob` })).toMatch(/FLURRY_AUTH=none, yet API keys are given/);
    expect(startError({ FLURRY_AUTH: 'open' })).toMatch(/FLURRY_AUTH must be one of keys, none/);
    expect(startError({ FLURRY_API_KEYS_FILE: join(dir, 'absent.json') })).toMatch(/cannot read .*absent\.json: ENOENT/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('bad.json', '{"keys": [') })).toMatch(/bad\.json: not valid JSON/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('list.json', '[]') })).toMatch(/expected \{ "keys"/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('empty.json', '{"keys": []}') })).toMatch(/no API keys/);
    const plain = keyFile('plain.json', JSON.stringify({ keys: [{ tenant: 'alice', role: 'user', sha256: ALICE }] }));
    const plainError = startError({ FLURRY_API_KEYS_FILE: plain });
    expect(plainError).toMatch(/keys\[0\]\.sha256 must be the key's SHA-256 .* never keys/);
    expect(plainError).not.toContain(ALICE);
    const entry = { tenant: 'alice', role: 'user', sha256: hashApiKey(ALICE) };
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('role.json', JSON.stringify({ keys: [{ ...entry, role: 'root' }] })) })).toMatch(/keys\[0\]\.role must be one of admin, user/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('tenant.json', JSON.stringify({ keys: [{ ...entry, tenant: '../x' }] })) })).toMatch(/keys\[0\]\.tenant must match/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('extra.json', JSON.stringify({ keys: [{ ...entry, key: ALICE }] })) })).toMatch(/unknown field "key"/);
    expect(startError({ FLURRY_API_KEYS_FILE: keyFile('twice.json', JSON.stringify({ keys: [entry, { ...entry, tenant: 'bob' }] })) })).toMatch(/the same key is listed twice/);
    expect(startError({ FLURRY_API_KEYS_FILE: file, FLURRY_API_KEYS: `${ALICE}=other` })).toMatch(/the same API key is given twice/);
    const short = startError({ FLURRY_API_KEYS: 'short=bob' });
    expect(short).toMatch(/item 1: each key must be at least 8 characters/);
    expect(short).not.toContain('short=');
    expect(startError({ FLURRY_API_KEYS: `${BOB}=bob:root` })).toMatch(/role "root" must be one of admin, user/);
    expect(startError({ FLURRY_API_KEYS: `${BOB}=Bob` })).toMatch(/item 1: expected key=tenant or key=tenant:role/);
  });
});
