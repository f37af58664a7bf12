/** `flurry.functions.logs` and `flurry.jobs.logs` against a small HTTP server playing the gateway's log routes. */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Flurry, FlurryApiError } from './index.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** Serves each request with `answer`; resolves with a client of it and the requests seen. */
async function gateway(answer: (req: IncomingMessage, n: number, res: import('node:http').ServerResponse) => void) {
  const seen: IncomingMessage[] = [];
  server = createServer((req, res) => {
    seen.push(req);
    answer(req, seen.length, res);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { flurry: new Flurry({ url, retries: { count: 3, withinMs: 5000 } }), seen };
}

const line = (id: number, message: string) => `id: ${id}\nevent: line\ndata: ${JSON.stringify({ at: 1, level: 'info', message, requestId: 'r', hostId: 'h', function: 'f' })}\n\n`;

describe('logs', () => {
  it('logs - the last lines, with limit, since and clone in the query', async () => {
    const { flurry, seen } = await gateway((_req, _n, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ lines: [{ at: 1, level: 'warn', message: 'hi', requestId: 'r', hostId: 'h', jobId: 'j', clone: 2 }] }));
    });
    const lines = await flurry.jobs.logs('job-1', { clone: 2, limit: 5, since: new Date(1000) });
    expect(lines.map((l) => l.message)).toEqual(['hi']);
    expect(seen[0].url).toBe('/v1/jobs/job-1/logs?limit=5&since=1000&clone=2');
    await flurry.functions.logs('f', { since: '10m' });
    expect(seen[1].url).toBe('/v1/functions/f/logs?since=10m');
  });

  it('logs - a refusal is a FlurryApiError with the gateway\'s words', async () => {
    const { flurry } = await gateway((_req, _n, res) => {
      res.writeHead(400, { 'content-type': 'application/json', 'x-flurry-error': 'bad_request' });
      res.end(JSON.stringify({ error: { code: 'bad_request', message: 'limit must be a whole number of lines from 1 to 10000, not "0"' } }));
    });
    const err = await flurry.functions.logs('f', { limit: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlurryApiError);
    expect((err as FlurryApiError).message).toContain('limit must be');
  });

  it('follow - a connection dropped inside a run resumes at that run: no line lost or repeated', async () => {
    const { flurry, seen } = await gateway((_req, n, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 1) {
        // Run 7's second line never arrives on this connection.
        res.write(line(5, 'a') + line(5, 'b') + line(7, 'c'));
        setTimeout(() => res.destroy(), 50);
      } else res.write(line(7, 'c') + line(7, 'd') + line(9, 'e'));
    });
    const got: string[] = [];
    for await (const l of flurry.functions.logs('f', { follow: true, limit: 3 })) {
      got.push(l.message);
      if (got.length === 5) break;
    }
    expect(got).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(seen[0].url).toBe('/v1/functions/f/logs?limit=3&follow=true');
    expect(seen[0].headers['last-event-id']).toBeUndefined();
    expect(seen[1].headers['last-event-id']).toBe('6');
  });
});
