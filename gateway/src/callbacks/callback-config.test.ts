import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { backoffBefore } from './callback-deliverer.js';
import { loadCallbackConfig } from './callback-config.js';
import { signatureHeader } from './callback-signature.js';

const MASTER = 'm'.repeat(40);

describe('callback configuration', () => {
  it('defaults - no secret (callbacks refused), nothing allowed, 5 attempts from 2 s doubling to at most 60 s, 10 s each', () => {
    const c = loadCallbackConfig({});
    expect(c.secrets).toBeUndefined();
    expect(c.allow.empty).toBe(true);
    expect(c).toMatchObject({ attempts: 5, backoffMs: 2000, maxBackoffMs: 60_000, timeoutMs: 10_000 });
  });

  it('secret - from the variable or a file, at least 32 characters, not both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flurry-cb-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'secret'), `${MASTER}\n`);
    const fromFile = loadCallbackConfig({ FLURRY_CALLBACK_SECRET_FILE: join(dir, 'secret') }).secrets!;
    expect(fromFile.forTenant('acme')).toBe(loadCallbackConfig({ FLURRY_CALLBACK_SECRET: MASTER }).secrets!.forTenant('acme'));
    expect(() => loadCallbackConfig({ FLURRY_CALLBACK_SECRET: 'short' })).toThrow(/at least 32 characters/);
    expect(() => loadCallbackConfig({ FLURRY_CALLBACK_SECRET: MASTER, FLURRY_CALLBACK_SECRET_FILE: join(dir, 'secret') })).toThrow(/not both/);
    expect(() => loadCallbackConfig({ FLURRY_CALLBACK_SECRET_FILE: join(dir, 'missing') })).toThrow(/cannot read .*missing: ENOENT/);
    expect(() => loadCallbackConfig({ FLURRY_CALLBACK_ATTEMPTS: '0' })).toThrow(/FLURRY_CALLBACK_ATTEMPTS/);
  });

  it('logged - the configuration as logged shows the allow-list but never the secret', () => {
    const c = loadCallbackConfig({ FLURRY_CALLBACK_SECRET: MASTER, FLURRY_CALLBACK_ALLOW: '127.0.0.1,hooks.internal' });
    const logged = JSON.stringify({ config: { callbacks: c } });
    expect(logged).not.toContain(MASTER);
    expect(logged).not.toContain(c.secrets!.forTenant('default'));
    expect(logged).toContain('"secrets":"[redacted]"');
    expect(logged).toContain('"allow":["127.0.0.1/32","hooks.internal"]');
  });

  it('tenant secrets - the same master gives every gateway the same secret; tenants and masters differ', () => {
    const a = loadCallbackConfig({ FLURRY_CALLBACK_SECRET: MASTER }).secrets!;
    const b = loadCallbackConfig({ FLURRY_CALLBACK_SECRET: 'n'.repeat(40) }).secrets!;
    expect(a.forTenant('acme')).toMatch(/^[0-9a-f]{64}$/);
    expect(a.forTenant('acme')).toBe(loadCallbackConfig({ FLURRY_CALLBACK_SECRET: MASTER }).secrets!.forTenant('acme'));
    expect(a.forTenant('acme')).not.toBe(a.forTenant('acme2'));
    expect(a.forTenant('acme')).not.toBe(b.forTenant('acme'));
  });

  it('signature - HMAC-SHA256 over "<t>." and the body, hex', () => {
    // Reference value: printf '1700000000.{"id":"job_1"}' | openssl dgst -sha256 -hmac secret
    expect(signatureHeader('secret', '{"id":"job_1"}', 1_700_000_000)).toBe('t=1700000000,v1=287e6e830f67761f411bf6f58d64f314188daeda980343d77443a9e6f4b74738');
  });

  it('backoff - none before the first attempt, then doubling up to the cap', () => {
    const c = { backoffMs: 1000, maxBackoffMs: 5000 };
    expect([0, 1, 2, 3, 4, 5, 60].map((n) => backoffBefore(n, c))).toEqual([0, 1000, 2000, 4000, 5000, 5000, 5000]);
  });
});
