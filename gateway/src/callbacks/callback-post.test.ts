import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { postCallback } from './callback-post.js';

const servers: Server[] = [];

async function receiver(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<number> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString(), res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

afterEach(() => {
  for (const s of servers.splice(0)) s.closeAllConnections(), s.close();
});

/** A target whose host name resolves nowhere: only the pinned address can be reached. */
const pinnedTo = (port: number, path = '/hook') => ({
  url: new URL(`http://callback.invalid:${port}${path}`),
  hostname: 'callback.invalid',
  addresses: [{ address: '127.0.0.1', family: 4 as const }],
});

describe('postCallback', () => {
  it('pinning - connects to the checked address, never resolving the name again; Host is the URL\'s', async () => {
    const seen: { host?: string; path?: string; body: string; sig?: string; type?: string }[] = [];
    const port = await receiver((req, body, res) => {
      seen.push({ host: req.headers.host, path: req.url, body, sig: req.headers['flurry-signature'] as string, type: req.headers['content-type'] });
      res.end('ok');
    });
    const out = await postCallback(pinnedTo(port, '/hook?token=a'), '{"id":"job_1"}', { 'flurry-signature': 't=1,v1=00' }, 5000);
    expect(out).toEqual({ ok: true, status: 200 });
    expect(seen).toEqual([{ host: `callback.invalid:${port}`, path: '/hook?token=a', body: '{"id":"job_1"}', sig: 't=1,v1=00', type: 'application/json' }]);
  });

  it('redirect - a 3xx is a failed attempt and the Location is not visited', async () => {
    let visited = false;
    const elsewhere = await receiver((_req, _body, res) => {
      visited = true;
      res.end();
    });
    const port = await receiver((_req, _body, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${elsewhere}/metadata` });
      res.end();
    });
    const out = await postCallback(pinnedTo(port), '{}', {}, 5000);
    expect(out).toEqual({ ok: false, status: 307, error: 'redirect (307) not followed' });
    expect(visited).toBe(false);
  });

  it('status - a non-2xx answer is a failure with its status', async () => {
    const port = await receiver((_req, _body, res) => {
      res.statusCode = 500;
      res.end('no');
    });
    expect(await postCallback(pinnedTo(port), '{}', {}, 5000)).toEqual({ ok: false, status: 500, error: 'the receiver answered 500' });
  });

  it('timeout - a receiver that never answers ends the attempt at the time limit', async () => {
    const port = await receiver(() => undefined);
    const out = await postCallback(pinnedTo(port), '{}', {}, 200);
    expect(out).toEqual({ ok: false, error: 'no answer within 200 ms' });
  });

  it('refused - nothing listening is a failed attempt, not a throw', async () => {
    const port = await receiver((_req, _body, res) => res.end());
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    const out = await postCallback(pinnedTo(port), '{}', {}, 5000);
    expect(out.ok).toBe(false);
    expect(out.error).toMatch(/ECONNREFUSED/);
  });
});
