import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyCallbackSignature } from './callback-signature.js';

const SECRET = 'a3'.repeat(32);
const BODY = '{"id":"job_1","state":"done"}';
const NOW = 1_700_000_000_000;
const T = NOW / 1000;

/** The gateway's signing, written out independently here. */
function sign(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

describe('verifyCallbackSignature', () => {
  it('valid - a signature of the exact body with the tenant secret verifies, as string or bytes', async () => {
    expect(await verifyCallbackSignature(SECRET, BODY, sign(SECRET, BODY, T), { now: NOW })).toBe(true);
    expect(await verifyCallbackSignature(SECRET, new TextEncoder().encode(BODY), sign(SECRET, BODY, T), { now: NOW })).toBe(true);
  });

  it('reference - matches the documented example (openssl dgst -sha256 -hmac)', async () => {
    const header = 't=1700000000,v1=287e6e830f67761f411bf6f58d64f314188daeda980343d77443a9e6f4b74738';
    expect(await verifyCallbackSignature('secret', '{"id":"job_1"}', header, { now: NOW })).toBe(true);
  });

  it('tampered - another body, another secret, another time or a cut MAC fail', async () => {
    const header = sign(SECRET, BODY, T);
    expect(await verifyCallbackSignature(SECRET, BODY.replace('done', 'failed'), header, { now: NOW })).toBe(false);
    expect(await verifyCallbackSignature('b4'.repeat(32), BODY, header, { now: NOW })).toBe(false);
    expect(await verifyCallbackSignature(SECRET, BODY, header.replace(`t=${T}`, `t=${T + 1}`), { now: NOW })).toBe(false);
    expect(await verifyCallbackSignature(SECRET, BODY, header.slice(0, -2), { now: NOW })).toBe(false);
  });

  it('replay - a signature older or newer than the tolerance fails; 0 turns the check off', async () => {
    const old = sign(SECRET, BODY, T - 301);
    expect(await verifyCallbackSignature(SECRET, BODY, old, { now: NOW })).toBe(false);
    expect(await verifyCallbackSignature(SECRET, BODY, sign(SECRET, BODY, T + 301), { now: NOW })).toBe(false);
    expect(await verifyCallbackSignature(SECRET, BODY, old, { now: NOW, toleranceSeconds: 600 })).toBe(true);
    expect(await verifyCallbackSignature(SECRET, BODY, old, { now: NOW, toleranceSeconds: 0 })).toBe(true);
  });

  it('malformed - a missing, empty, garbled or huge header fails without throwing', async () => {
    for (const header of [undefined, null, '', 't=', 'v1=00', `t=${T}`, `t=abc,v1=${'0'.repeat(64)}`, `t=${T},v1=zz`, 'x'.repeat(5000), `t=${T},v1=${'0'.repeat(64)}`]) {
      expect(await verifyCallbackSignature(SECRET, BODY, header, { now: NOW }), String(header).slice(0, 40)).toBe(false);
    }
  });
});
