import { describe, expect, it } from 'vitest';
import { EnvReader } from './config.js';
import { hostIdOfUser, hostUser, readNatsAuth } from './nats-auth.js';

describe('readNatsAuth', () => {
  it('is absent without a user, and needs user and password together', () => {
    expect(readNatsAuth(new EnvReader({}))).toBeUndefined();
    expect(() => readNatsAuth(new EnvReader({ NATS_USER: 'gateway' }))).toThrow(/together/);
    expect(() => readNatsAuth(new EnvReader({ NATS_PASSWORD: 'p' }))).toThrow(/together/);
  });

  it("defaults the inbox prefix to the user's own and refuses one that is not a single token", () => {
    expect(readNatsAuth(new EnvReader({ NATS_USER: 'host-h1', NATS_PASSWORD: 'p' }))?.inboxPrefix).toBe('_INBOX_host-h1');
    expect(readNatsAuth(new EnvReader({ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_INBOX_PREFIX: 'mine' }))?.inboxPrefix).toBe('mine');
    expect(() => readNatsAuth(new EnvReader({ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_INBOX_PREFIX: '_INBOX.*' }))).toThrow(/NATS_INBOX_PREFIX/);
  });

  it('never shows the password when logged', () => {
    const auth = readNatsAuth(new EnvReader({ NATS_USER: 'gateway', NATS_PASSWORD: 's3cret-pass' }))!;
    expect(auth.password).toBe('s3cret-pass');
    expect(JSON.stringify({ config: { natsAuth: auth } })).not.toContain('s3cret-pass');
  });

  it("names a host's id in its user", () => {
    expect(hostIdOfUser(hostUser('h-1'))).toBe('h-1');
    expect(hostIdOfUser('gateway')).toBeUndefined();
  });
});
