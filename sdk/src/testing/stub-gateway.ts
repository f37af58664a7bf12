/** A node:http server that speaks the gateway's HTTP contract, for the SDK's and the CLI's unit tests. */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FunctionRecord } from '../types.js';
import { STUB_HOSTS } from './stub-fleet.js';
import { sendError, sendJson, STUB_REQUEST_ID } from './stub-replies.js';
import { createStubJobs } from './stub-jobs.js';
import { createStubServices } from './stub-services.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** What `failNext` answers with: a platform error of that status (`Retry-After` when given), or `reset`: the connection is cut. */
export type StubFailure = { status: 429 | 503; retryAfter?: string } | 'reset';

export interface StubGateway {
  url: string;
  /** Every request the stub received, oldest first (failed ones too). */
  requests: RecordedRequest[];
  /** The next requests to `METHOD /path` (no query) get these answers, one each, before the real one. */
  failNext(method: string, path: string, ...answers: StubFailure[]): void;
  close(): Promise<void>;
}

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/**
 * Guests the stub can invoke, by function name (independent of what was deployed):
 * - `echo`: answers 200 with the request it saw, as JSON.
 * - `teapot`: the guest's own 418 with an `{ "error": ... }` body, which is still the guest's answer.
 * - `binary`: bytes that are not UTF-8.
 * - `trap`: the platform's guest_trap (marker and host header both set).
 * - `busy`: the platform's no_capacity with `Retry-After: 7`.
 * - `unwell`: the guest's own 503 (host header, no error marker).
 * - `behind-proxy`: a proxy's HTML 502, with none of the gateway's headers.
 * - `slow`: never answers.
 * Any other name: the platform's not_found.
 */
function invokeGuest(name: string, request: RecordedRequest, subpath: string, res: ServerResponse): void {
  const fromGuest = { 'x-flurry-request-id': STUB_REQUEST_ID, 'x-flurry-host': 'host-a', 'x-flurry-duration-ms': '12' };
  switch (name) {
    case 'echo': {
      const url = new URL(subpath, 'http://stub');
      const echoed = {
        method: request.method,
        path: url.pathname,
        query: url.search.slice(1),
        headers: request.headers,
        body: request.body.toString('utf8'),
      };
      res.writeHead(200, { ...fromGuest, 'content-type': 'application/json' }).end(JSON.stringify(echoed));
      return;
    }
    case 'teapot':
      res.writeHead(418, { ...fromGuest, 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'teapot', message: 'short and stout' } }));
      return;
    case 'binary':
      res.writeHead(200, { ...fromGuest, 'content-type': 'application/octet-stream' }).end(Buffer.from([0xff, 0x00, 0x80]));
      return;
    case 'trap':
      sendError(res, 502, 'guest_trap', 'unreachable executed', { 'x-flurry-host': 'host-a' });
      return;
    case 'busy':
      sendError(res, 503, 'no_capacity', 'no host has a free slot', { 'retry-after': '7' });
      return;
    case 'unwell':
      res.writeHead(503, { ...fromGuest, 'content-type': 'text/plain' }).end('not today');
      return;
    case 'behind-proxy':
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
      return;
    case 'slow':
      return;
    default:
      sendError(res, 404, 'not_found', `no function ${name}`);
  }
}

function recordFor(name: string, module: Buffer, previous: FunctionRecord | undefined): FunctionRecord {
  const now = Date.now();
  return {
    tenant: 'default',
    name,
    digest: createHash('sha256').update(module).digest('hex'),
    size: module.length,
    exports: ['handle', 'init'],
    memory: { initialPages: 1, maximumPages: 16 },
    createdAt: previous?.createdAt ?? now - 3_600_000,
    updatedAt: now - 5_000,
  };
}

export async function startStubGateway(): Promise<StubGateway> {
  const requests: RecordedRequest[] = [];
  const functions = new Map<string, FunctionRecord>();
  const jobs = createStubJobs();
  const services = createStubServices();
  const failures = new Map<string, StubFailure[]>();

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
    requests.push(request);

    const url = new URL(request.url, 'http://stub');
    const route = url.pathname;
    const failure = failures.get(`${request.method} ${route}`)?.shift();
    if (failure === 'reset') return req.socket.destroy();
    if (failure) return sendError(res, failure.status, failure.status === 429 ? 'rate_limited' : 'unavailable', 'the stub is busy', failure.retryAfter === undefined ? {} : { 'retry-after': failure.retryAfter });
    let match: RegExpMatchArray | null;
    if (route === '/healthz') return sendJson(res, 200, { ok: true });
    if (route === '/v1/hosts' && request.method === 'GET') return sendJson(res, 200, { hosts: STUB_HOSTS });
    if (route === '/v1/functions' && request.method === 'GET') return sendJson(res, 200, { functions: [...functions.values()] });
    if ((match = route.match(/^\/v1\/functions\/([^/]+)$/))) {
      const name = decodeURIComponent(match[1]);
      const existing = functions.get(name);
      switch (request.method) {
        case 'PUT': {
          if (!request.body.subarray(0, 4).equals(WASM_MAGIC)) return sendError(res, 400, 'invalid_module', 'not a wasm module: bad magic');
          const record = recordFor(name, request.body, existing);
          functions.set(name, record);
          return sendJson(res, existing ? 200 : 201, { function: record });
        }
        case 'GET':
          return existing ? sendJson(res, 200, { function: existing }) : sendError(res, 404, 'not_found', `no function ${name}`);
        case 'DELETE':
          if (!existing) return sendError(res, 404, 'not_found', `no function ${name}`);
          functions.delete(name);
          return sendJson(res, 200, { deleted: name });
      }
    }
    if (route.startsWith('/v1/jobs') && jobs.handle({ ...request, route, search: url.searchParams }, res)) return;
    if (services.handle({ method: request.method, route, body: request.body }, res)) return;
    if ((match = request.url.match(/^\/fn\/([^/?]+)(.*)$/))) {
      return invokeGuest(decodeURIComponent(match[1]), request, match[2] || '/', res);
    }
    sendError(res, 404, 'not_found', `no route ${request.method} ${route}`);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext: (method, path, ...answers) => failures.set(`${method} ${path}`, [...(failures.get(`${method} ${path}`) ?? []), ...answers]),
    close: () =>
      new Promise<void>((resolve) => {
        // `slow` and the `hang` job's event stream hold their connections open; do not wait for them.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A minimal valid wasm module (magic and version only). */
export const EMPTY_WASM_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
