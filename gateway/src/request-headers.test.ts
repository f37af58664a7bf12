import { once } from 'node:events';
import { connect } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { header, rawHeaderList } from './request-headers.js';

/** Answers what the two readers see of the request's headers. */
function app() {
  const a = new Hono();
  a.get('/', (c) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    return c.json({ list: incoming && rawHeaderList(incoming, true), all: incoming && rawHeaderList(incoming, false).length, x: header(c, 'x-a') ?? null, absent: header(c, 'x-absent') ?? null });
  });
  return a;
}

let server: ReturnType<typeof serve>;
let port: number;

beforeAll(async () => {
  // Not replacing the global Request and Response: other test files share this worker's globals.
  server = serve({ fetch: app().fetch, port: 0, hostname: '127.0.0.1', overrideGlobalObjects: false });
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A request as sent on the wire (fetch would join repeated headers). */
async function raw(lines: string[]): Promise<{ list: [string, string][]; all: number; x: string | null; absent: string | null }> {
  const socket = connect(port, '127.0.0.1');
  socket.end([...lines, 'Connection: close', '', ''].join('\r\n'));
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as never;
}

describe('request headers', () => {
  it('served by Node - a repeated header reaches the guest as separate entries, in the order sent, names in lower case', async () => {
    const got = await raw(['GET / HTTP/1.1', 'Host: a', 'X-A: 1', 'Authorization: Bearer k', 'x-b: 2', 'X-a: 3']);
    expect(got.list).toEqual([['host', 'a'], ['x-a', '1'], ['x-b', '2'], ['x-a', '3'], ['connection', 'close']]);
    expect(got.all).toBe(6);
  });

  it('served by Node - one header reads as Headers.get gives it: repeated values joined, absent undefined', async () => {
    const got = await raw(['GET / HTTP/1.1', 'Host: a', 'X-A: 1', 'x-b: 2', 'X-a: 3']);
    expect(got.x).toBe('1, 3');
    expect(got.absent).toBeNull();
  });

  it('without a server - the same from the standard Request', async () => {
    const res = await app().request('/', { headers: { 'x-a': '1', authorization: 'Bearer k' } });
    const got = (await res.json()) as { x: string };
    expect(got.x).toBe('1');
  });
});
