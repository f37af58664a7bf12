import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';
import { withoutUrlCredentials } from './redact.js';

/** The lines a logger at `level` writes for `write(log)`, parsed, and the raw text. */
function logged(write: (log: ReturnType<typeof createLogger>) => void, level = 'debug'): { lines: any[]; text: string } {
  const out: string[] = [];
  const log = createLogger('test', { pid: 1 }, level, { write: (s: string) => void out.push(s) });
  write(log);
  const text = out.join('');
  return { lines: out.map((l) => JSON.parse(l)), text };
}

describe('withoutUrlCredentials', () => {
  it('password - user kept, password replaced, host and path kept', () => {
    expect(withoutUrlCredentials('nats://flurry:s3cret@10.0.0.1:4222')).toBe('nats://flurry:[redacted]@10.0.0.1:4222');
    expect(withoutUrlCredentials('connect to tls://a:b@h:1, nats://c:d@h:2 failed')).toBe('connect to tls://a:[redacted]@h:1, nats://c:[redacted]@h:2 failed');
    expect(withoutUrlCredentials('https://u:p%40ss@example.com/x?y=1')).toBe('https://u:[redacted]@example.com/x?y=1');
  });

  it('token - a userinfo without a colon is a token (NATS token auth): all of it replaced', () => {
    expect(withoutUrlCredentials('nats://s3cret-token@127.0.0.1:4222')).toBe('nats://[redacted]@127.0.0.1:4222');
  });

  it('query - secret-named parameters replaced, others kept', () => {
    expect(withoutUrlCredentials('https://h/cb?job=1&token=abc&api_key=k1&sig=zz#f')).toBe('https://h/cb?job=1&token=[redacted]&api_key=[redacted]&sig=[redacted]#f');
  });

  it('json - a JSON-escaped quote in a password does not end the match early', () => {
    expect(withoutUrlCredentials('{"u":"nats://a:p\\"w@h:1"}')).toBe('{"u":"nats://a:[redacted]@h:1"}');
  });

  it('untouched - URLs without credentials, e-mail addresses, plain text', () => {
    for (const s of ['nats://127.0.0.1:4222', 'http://h/a@b', 'mail ada@example.com', 'no url here', 'http://[::1]:80/']) expect(withoutUrlCredentials(s)).toBe(s);
  });
});

describe('createLogger - secrets out of log lines', () => {
  const PASSWORD = 'pw-7f3a9c';
  const KEY = 'key-0b1c2d3e4f';

  it('fields - authorization, cookies, keys, passwords, tokens and secrets, at the top and in config, headers and options, are redacted; collections by their size', () => {
    const { lines, text } = logged((log) => {
      log.info({ headers: { authorization: `Bearer ${KEY}`, cookie: `s=${KEY}`, 'x-api-key': KEY }, token: KEY }, 'request');
      log.info({ config: { apiKeys: new Map([[KEY, 'alpha'], ['other-key-123', 'beta']]), nats: { password: PASSWORD }, callbackSecret: KEY, port: 8080 } }, 'starting');
      log.warn({ tenant: 'alpha', secret: KEY, credentials: { user: 'u', pass: PASSWORD } }, 'secret');
    });
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(PASSWORD);
    expect(lines[0].headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]' });
    expect(lines[1].config).toEqual({ apiKeys: '[redacted: 2]', nats: { password: '[redacted]' }, callbackSecret: '[redacted]', port: 8080 });
    expect(lines[2]).toMatchObject({ tenant: 'alpha', secret: '[redacted]', credentials: '[redacted]' });
  });

  it('urls - credentials in URLs are removed wherever they are: config arrays, messages, error texts and stacks', () => {
    const url = `nats://flurry:${PASSWORD}@127.0.0.1:4222`;
    const { lines, text } = logged((log) => {
      log.info({ config: { natsServers: [url, 'nats://127.0.0.1:4223'] } }, 'starting');
      log.error({ err: new Error(`cannot reach nats-server at ${url}`) }, `gave up on ${url}`);
      log.warn({ url: `https://cb:${PASSWORD}@example.com/hook?token=${KEY}` }, 'job callback failed');
    });
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(KEY);
    expect(lines[0].config.natsServers).toEqual(['nats://flurry:[redacted]@127.0.0.1:4222', 'nats://127.0.0.1:4223']);
    expect(lines[1].msg).toBe('gave up on nats://flurry:[redacted]@127.0.0.1:4222');
    expect(lines[1].err.message).toBe('cannot reach nats-server at nats://flurry:[redacted]@127.0.0.1:4222');
    expect(lines[1].err.stack).toContain('nats://flurry:[redacted]@');
    expect(lines[2].url).toBe('https://cb:[redacted]@example.com/hook?token=[redacted]');
  });

  it('bare credentials - a NATS nkey seed and a JWT quoted in a message or an error are removed', () => {
    const seed = `SUA${'B'.repeat(55)}`;
    const jwt = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQUJDIn0.c2lnbmF0dXJl';
    const { lines, text } = logged((log) => log.error({ err: new Error(`bad creds file: ${jwt} ${seed}`) }, `-----BEGIN USER NKEY SEED-----\n${seed}`));
    expect(text).not.toContain(seed);
    expect(text).not.toContain(jwt);
    expect(lines[0].msg).toBe('-----BEGIN USER NKEY SEED-----\n[redacted]');
    expect(lines[0].err.message).toBe('bad creds file: [redacted] [redacted]');
  });

  it('ordinary fields - ids, KV keys and URLs without credentials are logged as they are', () => {
    const { lines } = logged((log) => log.info({ key: 'alpha.room', jobId: 'job_1', url: 'http://127.0.0.1:8080', requestId: 'req_1' }, 'ready'));
    expect(lines[0]).toMatchObject({ key: 'alpha.room', jobId: 'job_1', url: 'http://127.0.0.1:8080', requestId: 'req_1', msg: 'ready' });
  });
});
