/**
 * The call routes as served in front of the Hono app (gatewayServer:
 * callHandler, then the app), on a port, with in-memory fakes behind them: a
 * registry of a few functions, an invoker and a service router that record
 * each call and answer as the test asks. Each case checks what docs/api.md and
 * docs/guest-abi.md promise: what the guest is handed (name, path, query,
 * headers, body), the guest's answer passed back with the platform's headers,
 * and every refusal in the one error shape with its code, status and headers.
 */
import { createHash } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, FlurryError, parseTraceparent, type FunctionRecord, type InvokeRequest, type ServiceRecord, type TraceContext } from '@flurry/core';
import { createApp, type AppDeps } from '../app.js';
import { ErrorBody } from '../api/api-app.js';
import { KeyRing } from '../auth/key-ring.js';
import { loadCallbackConfig } from '../callbacks/callback-config.js';
import { gatewayServer } from '../gateway-server.js';
import type { InvokeResult } from '../invoker.js';
import { ConcurrentCalls } from '../quotas/concurrent-calls.js';
import { RequestRate } from '../quotas/request-rate.js';
import { callHandler } from './call-handler.js';
import { CALL_ROUTES } from './call-routes.js';
import { rawExchange } from '../../../test/helpers/raw-http.js';

const KEY = 'flk_call_handler_test';
const MAX_BODY = 64;
const LINK = '</openapi.json>; rel="service-desc"';

function fn(name: string): FunctionRecord {
  return { tenant: 't1', name, digest: 'cd'.repeat(32), size: 1, exports: ['handle'], memory: { initialPages: 1, maximumPages: 1 }, createdAt: 1, updatedAt: 1 };
}

/** What the fake invoker answers a call: by default 200 with the body `ok`. */
type Answer = (req: InvokeRequest) => Promise<Partial<InvokeResult>> | Partial<InvokeResult>;

/** What the fake service router was handed: the request as built for the service's record, and how to route it. */
interface Forwarded {
  service: string;
  req: InvokeRequest;
  routeKey: string | undefined;
  trace: TraceContext | undefined;
}

interface Fixture {
  port: number;
  calls: InvokeRequest[];
  lookups: string[];
  answer: Answer;
  /** Service requests, and how the fake router answers them (by default 200 `ok` from instance `inst-1`). */
  forwarded: Forwarded[];
  serviceAnswer: Answer;
  /** The paths of the requests the Hono app was handed (those the call routes left to it). */
  appRequests: string[];
  /** Ends every request in flight with the broker's outage. */
  loseBroker(): void;
  slots: ConcurrentCalls;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function start(opts: { rate?: number; calls?: number; brokerUp?: boolean; services?: boolean } = {}): Promise<Fixture> {
  const functions = new Map(['echo', 'a b'].map((n) => [n, fn(n)]));
  let outages: ((err: Error) => void)[] = [];
  const fixture: Fixture = {
    port: 0, calls: [], lookups: [], answer: () => ({}), forwarded: [], serviceAnswer: () => ({}), appRequests: [], slots: new ConcurrentCalls(opts.calls ?? 0),
    loseBroker: () => {
      for (const reject of outages) reject(new FlurryError('unavailable', 'the connection to the fleet\'s message broker was lost', { retryAfterSeconds: 1 }));
      outages = [];
    },
  };
  const deps: AppDeps = {
    link: {
      connected: opts.brokerUp ?? true,
      assertUp: () => {
        if (!(opts.brokerUp ?? true)) throw new FlurryError('unavailable', 'the fleet\'s message broker is not reachable', { retryAfterSeconds: 2 });
      },
      nextOutage: () => {
        let reject: (err: Error) => void = () => undefined;
        const outage = new Promise<never>((_, r) => (reject = r));
        outage.catch(() => undefined);
        outages.push(reject);
        return { outage, cancel: () => (outages = outages.filter((o) => o !== reject)) };
      },
    } as never,
    registry: {
      get: async (_tenant: string, name: string) => {
        fixture.lookups.push(name);
        const found = functions.get(name);
        if (!found) throw new FlurryError('not_found', `function "${name}" is not deployed`);
        return found;
      },
    } as never,
    invoker: {
      invoke: async (_fn: FunctionRecord, req: InvokeRequest) => {
        fixture.calls.push(req);
        return { ok: true, status: 200, headers: [], body: new Uint8Array(Buffer.from('ok')), hostId: 'host-1', durationMs: 0.25, ...(await fixture.answer(req)) };
      },
    } as never,
    fleet: {} as never,
    log: createLogger('test', {}, 'silent'),
    maxBodyBytes: MAX_BODY,
    maxModuleBytes: MAX_BODY,
    auth: KeyRing.withKeys([{ tenant: 't1', role: 'user', sha256: createHash('sha256').update(KEY).digest('hex') }]),
    callbacks: loadCallbackConfig({}),
    limits: { rate: new RequestRate(opts.rate ?? 0, opts.rate ?? 1), calls: fixture.slots },
    ...(opts.services === false ? {} : {
      services: {
        router: {
          forward: async (_tenant: string, service: string, build: (record: ServiceRecord) => InvokeRequest, routeKey?: string, trace?: TraceContext) => {
            if (service === 'nope') throw new FlurryError('not_found', `service "${service}" does not exist`);
            const req = build({ tenant: 't1', name: service, function: 'room', digest: 'ef'.repeat(32), min: 1, max: 1, targetConcurrency: 8, createdAt: 1, updatedAt: 1 });
            fixture.forwarded.push({ service, req, routeKey, trace });
            const base = { ok: true, status: 200, headers: [], body: new Uint8Array(Buffer.from('ok')), hostId: 'host-2', durationMs: 0.5, instanceId: 'inst-1' };
            return { ...base, ...(await fixture.serviceAnswer(req)) };
          },
        },
      } as never,
    }),
  };
  // The globals stay the standard Request and Response: the suites of this folder share a process.
  const app = createApp(deps);
  const seenByApp = { fetch: (req: Request, env: object) => (fixture.appRequests.push(new URL(req.url).pathname), app.fetch(req, env)) };
  server = gatewayServer(seenByApp, callHandler(deps), { hostname: '127.0.0.1', overrideGlobalObjects: false });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  fixture.port = (server.address() as AddressInfo).port;
  return fixture;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node:http (the path goes out as written); the key unless `headers` says otherwise. */
function ask(port: number, method: string, path: string, opts: { headers?: Record<string, string | string[]>; body?: Buffer | string; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: opts.agent, headers: { authorization: `Bearer ${KEY}`, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A refusal in the API's one shape: status, code in the header and the body, the request id, trace and link. */
function expectRefusal(reply: Reply, status: number, code: string, message?: RegExp): void {
  expect(reply.status, reply.body.toString()).toBe(status);
  expect(reply.headers['x-flurry-error']).toBe(code);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(reply.headers['x-flurry-request-id']).toMatch(/^[\w.-]+$/);
  expect(reply.headers.link).toBe(LINK);
  expect(parseTraceparent(reply.headers.traceparent as string)).toBeDefined();
  const body = ErrorBody.parse(JSON.parse(reply.body.toString()));
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
}

describe('call routes - what the guest is handed', () => {
  it('ANY /fn/:name/* - the name and path decoded as Hono routes them, the raw query, the headers in order, the body', async () => {
    const f = await start();
    const reply = await ask(f.port, 'PUT', '/fn/ech%6F/a%20b/c%2Fd%25e?x=%20y&x=2', { headers: { 'x-one': ['1', '2'], 'content-type': 'text/plain' }, body: 'hello' });
    expect(reply.status).toBe(200);
    expect(f.calls).toHaveLength(1);
    const call = f.calls[0]!;
    // decodeURI over the path: `%2F` and `%25` stay encoded (docs/guest-abi.md).
    expect(call).toMatchObject({ tenant: 't1', name: 'echo', method: 'PUT', path: '/a b/c%2Fd%25e', query: 'x=%20y&x=2' });
    expect(Buffer.from(call.body).toString()).toBe('hello');
    // The key is the gateway's, not the guest's; a repeated header arrives as separate entries in order.
    expect(call.headers.filter(([n]) => n.startsWith('x-one') || n === 'authorization')).toEqual([['x-one', '1'], ['x-one', '2']]);
    expect(call.requestId).toBe(reply.headers['x-flurry-request-id']);
  });

  it('ANY /fn/:name - the guest sees path /; a trailing slash also /; a name with an encoded space is decoded', async () => {
    const f = await start();
    expect((await ask(f.port, 'GET', '/fn/echo')).status).toBe(200);
    expect((await ask(f.port, 'GET', '/fn/echo/')).status).toBe(200);
    expect((await ask(f.port, 'GET', '/fn/a%20b/x')).status).toBe(200);
    expect(f.calls.map((c) => [c.name, c.path, c.query])).toEqual([['echo', '/', ''], ['echo', '/', ''], ['a b', '/x', '']]);
  });

  it('dot segments are resolved and characters outside the URL\'s sets encoded, as the URL the app was handed had them', async () => {
    const f = await start();
    expect((await ask(f.port, 'GET', '/fn/other/../echo/./a/%2e%2e/b?q=<a>')).status).toBe(200);
    expect(f.calls[0]).toMatchObject({ name: 'echo', path: '/b', query: 'q=%3Ca%3E' });
  });

  it('POST /v1/functions/:name/invoke - the guest sees a POST to ?path (default /), with the whole query', async () => {
    const f = await start();
    expect((await ask(f.port, 'POST', '/v1/functions/echo/invoke?path=%2Fa+b&z=1', { body: 'x' })).status).toBe(200);
    expect((await ask(f.port, 'POST', '/v1/functions/echo/invoke', { body: 'x' })).status).toBe(200);
    expect((await ask(f.port, 'POST', '/v1/functions/echo/invoke?path=', { body: 'x' })).status).toBe(200);
    expect(f.calls.map((c) => [c.method, c.path, c.query])).toEqual([['POST', '/a b', 'path=%2Fa+b&z=1'], ['POST', '/', ''], ['POST', '/', 'path=']]);
  });

  it('x-request-id: a plain one given is the call\'s id; anything else gets a new one', async () => {
    const f = await start();
    const given = await ask(f.port, 'GET', '/fn/echo', { headers: { 'x-request-id': 'my.id-1' } });
    const bad = await ask(f.port, 'GET', '/fn/echo', { headers: { 'x-request-id': 'not plain!' } });
    expect(given.headers['x-flurry-request-id']).toBe('my.id-1');
    expect(bad.headers['x-flurry-request-id']).toMatch(/^req/);
    expect(f.calls.map((c) => c.requestId)).toEqual(['my.id-1', bad.headers['x-flurry-request-id']]);
  });

  it('traceparent: the answer\'s span is a child in the caller\'s trace', async () => {
    const f = await start();
    const reply = await ask(f.port, 'GET', '/fn/echo', { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    const span = parseTraceparent(reply.headers.traceparent as string);
    expect(span?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(span?.spanId).not.toBe('b7ad6b7169203331');
  });
});

describe('call routes - the guest\'s answer', () => {
  it('status, body and headers pass; hop-by-hop and x-flurry-* from the guest do not; the platform\'s are added', async () => {
    const f = await start();
    f.answer = () => ({
      status: 418, body: new Uint8Array(Buffer.from('teapot')),
      headers: [['X-A', ' 1 '], ['x-a', '2'], ['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'], ['X-Flurry-Error', 'forged'], ['Content-Length', '99'], ['Connection', 'close'], ['traceparent', '00-forged']],
    });
    const reply = await ask(f.port, 'GET', '/fn/echo');
    expect(reply.status).toBe(418);
    expect(reply.body.toString()).toBe('teapot');
    expect(reply.headers).toMatchObject({ 'x-a': '1, 2', 'set-cookie': ['a=1', 'b=2'], 'content-length': '6', 'x-flurry-host': 'host-1', 'x-flurry-duration-ms': '0.250', 'content-type': 'text/plain; charset=UTF-8' });
    expect(reply.headers['x-flurry-error']).toBeUndefined();
    expect(reply.headers.traceparent).not.toBe('00-forged');
    expect(reply.headers.link).toBeUndefined();
  });

  it('HEAD - the guest\'s status and headers without a body', async () => {
    const f = await start();
    f.answer = () => ({ headers: [['content-type', 'application/json']], body: new Uint8Array(Buffer.from('{"a":1}')) });
    const reply = await ask(f.port, 'HEAD', '/fn/echo');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['x-flurry-host']).toBe('host-1');
    expect(f.calls[0]!.method).toBe('HEAD');
  });

  it('204 and 304 - no body, and no content-length, whatever the guest wrote', async () => {
    const f = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (const status of [204, 304]) {
      f.answer = () => ({ status, body: new Uint8Array(Buffer.from('dropped')) });
      const reply = await ask(f.port, 'GET', '/fn/echo', { agent });
      expect(reply.status).toBe(status);
      expect(reply.body.length).toBe(0);
      expect(reply.headers['content-length']).toBeUndefined();
    }
    // The connection carried both and still carries a call: nothing was written past the bodiless answers.
    f.answer = () => ({});
    expect((await ask(f.port, 'GET', '/fn/echo', { agent })).body.toString()).toBe('ok');
    agent.destroy();
  });

  it('a header HTTP cannot carry - 500 internal in the error shape, nothing of the guest\'s answer', async () => {
    const f = await start();
    f.answer = () => ({ headers: [['x-bad', 'a\u0000b']] });
    expectRefusal(await ask(f.port, 'GET', '/fn/echo'), 500, 'internal');
  });

  it('a platform failure of the call - its code and status, retry-after when it has one', async () => {
    const f = await start();
    f.answer = () => Promise.reject(new FlurryError('unavailable', 'function "echo" could not be placed', { retryAfterSeconds: 1 }));
    const reply = await ask(f.port, 'GET', '/fn/echo');
    expectRefusal(reply, 503, 'unavailable', /could not be placed/);
    expect(reply.headers['retry-after']).toBe('1');
    f.answer = () => Promise.reject(new FlurryError('timeout', 'no answer from the fleet within 5 ms'));
    expectRefusal(await ask(f.port, 'GET', '/fn/echo'), 504, 'timeout');
  });
});

describe('call routes - refusals', () => {
  it('no key, an unknown key, two keys - 401 unauthorized, the function not even looked up', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'GET', '/fn/echo', { headers: { authorization: [] } }), 401, 'unauthorized');
    expectRefusal(await ask(f.port, 'GET', '/fn/echo', { headers: { authorization: 'Bearer flk_nope' } }), 401, 'unauthorized');
    expectRefusal(await ask(f.port, 'GET', '/fn/echo', { headers: { authorization: [`Bearer ${KEY}`, `Bearer ${KEY}`] } }), 401, 'unauthorized');
    expect(f.lookups).toEqual([]);
  });

  it('HEAD refused - the error\'s status and headers, no body', async () => {
    const f = await start();
    const reply = await ask(f.port, 'HEAD', '/fn/echo', { headers: { authorization: 'Bearer flk_nope' } });
    expect(reply.status).toBe(401);
    expect(reply.body.length).toBe(0);
    expect(reply.headers).toMatchObject({ 'x-flurry-error': 'unauthorized', 'content-type': 'application/json', link: LINK });
    expect(reply.headers.traceparent).toBeDefined();
  });

  it('an unknown function, or an encoded slash in the name - 404 not_found naming it', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'GET', '/fn/nope/x'), 404, 'not_found', /"nope"/);
    expectRefusal(await ask(f.port, 'GET', '/fn/a%2Fb/c'), 404, 'not_found', /"a\/b"/);
    expectRefusal(await ask(f.port, 'POST', '/v1/functions/nope/invoke'), 404, 'not_found', /"nope"/);
  });

  it('requests that are no call route - the app\'s own answer (no route for them)', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'GET', '/fn/'), 404, 'not_found', /no route for GET \/fn\//);
    expectRefusal(await ask(f.port, 'GET', '/v1/functions/echo/invoke'), 404, 'not_found', /no route for GET/);
    expectRefusal(await ask(f.port, 'POST', '/v1/functions/echo/invoke/'), 404, 'not_found', /no route for POST/);
    expect(f.calls).toEqual([]);
  });

  it('invoke with two ?path values - 400 bad_request naming the parameter', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'POST', '/v1/functions/echo/invoke?path=/a&path=/b', { body: 'x' }), 400, 'bad_request', /query parameter "path"/);
    expect(f.calls).toEqual([]);
  });

  it('a body over FLURRY_MAX_BODY_BYTES - 413 whether declared or sent chunked; the connection still carries the next call', async () => {
    const f = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expectRefusal(await ask(f.port, 'POST', '/fn/echo', { body: 'x'.repeat(MAX_BODY + 1), agent }), 413, 'payload_too_large', new RegExp(`limit of ${MAX_BODY} bytes`));
    expectRefusal(await ask(f.port, 'POST', '/fn/echo', { body: 'y'.repeat(MAX_BODY * 4), headers: { 'transfer-encoding': 'chunked' }, agent }), 413, 'payload_too_large');
    expect((await ask(f.port, 'POST', '/fn/echo', { body: 'z'.repeat(MAX_BODY), agent })).status).toBe(200);
    expect(f.calls).toHaveLength(1);
    expect(f.calls[0]!.body.length).toBe(MAX_BODY);
    agent.destroy();
  });

  it('the request rate - 429 rate_limited with retry-after once the tenant\'s burst is spent', async () => {
    const f = await start({ rate: 1 });
    expect((await ask(f.port, 'GET', '/fn/echo')).status).toBe(200);
    const reply = await ask(f.port, 'GET', '/fn/echo');
    expectRefusal(reply, 429, 'rate_limited', /requests a second/);
    expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(f.calls).toHaveLength(1);
  });

  it.each([['/fn/echo', 'answer', '/svc/room/x'], ['/svc/room/x', 'serviceAnswer', '/fn/echo']] as const)('concurrent calls (%s) - 429 rate_limited while the tenant\'s slots are taken, by a function\'s or a service\'s calls; the slot is given back however the call ends', async (path, answer, other) => {
    const f = await start({ calls: 1 });
    let finish: () => void = () => undefined;
    f[answer] = () => new Promise((resolve) => (finish = () => resolve({})));
    const first = ask(f.port, 'GET', path);
    await expect.poll(() => f.calls.length + f.forwarded.length).toBe(1);
    for (const refusedPath of [path, other]) {
      const refused = await ask(f.port, 'GET', refusedPath);
      expectRefusal(refused, 429, 'rate_limited', /calls in flight/);
      expect(refused.headers['retry-after']).toBe('1');
    }
    finish();
    expect((await first).status).toBe(200);
    expect(f.slots.inFlight('t1')).toBe(0);
    f[answer] = () => Promise.reject(new FlurryError('timeout', 'late'));
    expectRefusal(await ask(f.port, 'GET', path), 504, 'timeout');
    expect(f.slots.inFlight('t1')).toBe(0);
  });

  it('the broker away - 503 unavailable at once; lost during a call - 503 then, not at the call\'s timeout', async () => {
    const down = await start({ brokerUp: false });
    const reply = await ask(down.port, 'GET', '/fn/echo');
    expectRefusal(reply, 503, 'unavailable', /not reachable/);
    expect(reply.headers['retry-after']).toBe('2');
    expect(down.lookups).toEqual([]);
    // The key is checked first: a caller without one learns nothing of the broker.
    expectRefusal(await ask(down.port, 'GET', '/fn/echo', { headers: { authorization: [] } }), 401, 'unauthorized');
    await new Promise<void>((resolve) => server!.close(() => resolve()));

    const f = await start({ calls: 1 });
    f.answer = () => new Promise(() => undefined);
    const lost = ask(f.port, 'GET', '/fn/echo');
    await expect.poll(() => f.calls.length).toBe(1);
    f.loseBroker();
    expectRefusal(await lost, 503, 'unavailable', /lost/);
  });
});

describe('call routes - requests the app\'s listener refuses', () => {
  it('a Host the URL cannot keep, a backslash in the path - node-server\'s bodiless 400, as for any route', async () => {
    const f = await start();
    const send = (head: string) => rawExchange(f.port, 'GET', Buffer.from(`${head}\r\nAuthorization: Bearer ${KEY}\r\n\r\n`, 'latin1'), 5000);
    for (const head of ['GET /fn/echo HTTP/1.1\r\nHost: a/b', 'GET /fn/echo\\x HTTP/1.1\r\nHost: 127.0.0.1']) {
      const reply = await send(head);
      expect(reply.status, head).toBe(400);
      expect(reply.headers.get('x-flurry-error')).toBeUndefined();
    }
    // A backslash in the query is not the path's: the call goes through.
    expect((await send('GET /fn/echo?a\\b HTTP/1.1\r\nHost: 127.0.0.1')).status).toBe(200);
    expect(f.calls.map((c) => c.query)).toEqual(['a\\b']);
  });
});

describe('call routes - ANY /svc/:name/* (a service\'s instance)', () => {
  it('what the instance is handed: the service\'s function and digest, the path and query as for /fn, the headers without the key, the body', async () => {
    const f = await start();
    const reply = await ask(f.port, 'PUT', '/svc/ro%6Fm/a%20b/c%2Fd?x=%20y&x=2', { headers: { 'x-one': ['1', '2'] }, body: 'hello' });
    expect(reply.status).toBe(200);
    expect(f.forwarded).toHaveLength(1);
    const { service, req, routeKey, trace } = f.forwarded[0]!;
    expect(service).toBe('room');
    expect(req).toMatchObject({ tenant: 't1', name: 'room', digest: 'ef'.repeat(32), method: 'PUT', path: '/a b/c%2Fd', query: 'x=%20y&x=2' });
    expect(Buffer.from(req.body).toString()).toBe('hello');
    expect(req.headers.filter(([n]) => n === 'x-one' || n === 'authorization')).toEqual([['x-one', '1'], ['x-one', '2']]);
    expect(routeKey).toBeUndefined();
    // The gateway's own id goes to the host as it is, and the answer's span is the one the router was handed.
    expect(req.requestId).toBe(reply.headers['x-flurry-request-id']);
    expect(parseTraceparent(reply.headers.traceparent as string)?.spanId).toBe(trace?.spanId);
    expect(f.calls).toEqual([]);
    // Answered in front of the app: the framework never saw it.
    expect(f.appRequests).toEqual([]);
  });

  it('/svc/:name - the instance sees path /; a trailing slash also /', async () => {
    const f = await start();
    expect((await ask(f.port, 'GET', '/svc/room')).status).toBe(200);
    expect((await ask(f.port, 'GET', '/svc/room/?q')).status).toBe(200);
    expect(f.forwarded.map((c) => [c.service, c.req.path, c.req.query])).toEqual([['room', '/', ''], ['room', '/', 'q']]);
  });

  it('the routing key: x-flurry-route, else the flurry-route cookie (percent-decoded, or as it stands when it is not)', async () => {
    const f = await start();
    await ask(f.port, 'GET', '/svc/room/x', { headers: { 'x-flurry-route': 'ada', cookie: 'flurry-route=bob' } });
    await ask(f.port, 'GET', '/svc/room/x', { headers: { cookie: 'a=1; flurry-route=b%20c; z=2' } });
    await ask(f.port, 'GET', '/svc/room/x', { headers: { cookie: 'flurry-route=%zz' } });
    await ask(f.port, 'GET', '/svc/room/x', { headers: { 'x-flurry-route': '', cookie: 'flurry-route=' } });
    expect(f.forwarded.map((c) => c.routeKey)).toEqual(['ada', 'b c', '%zz', undefined]);
  });

  it('x-request-id: a given one answers as the request\'s id, and goes to the host with a suffix of its own (clients reuse theirs)', async () => {
    const f = await start();
    const reply = await ask(f.port, 'GET', '/svc/room/x', { headers: { 'x-request-id': 'my.id-1' } });
    expect(reply.headers['x-flurry-request-id']).toBe('my.id-1');
    expect(f.forwarded[0]!.req.requestId).toMatch(/^my\.id-1\.[0-9a-f]{12}$/);
  });

  it('the instance\'s answer: its status, body and headers (no hop-by-hop, no x-flurry-*), and the instance, host and time', async () => {
    const f = await start();
    f.serviceAnswer = () => ({ status: 418, body: new Uint8Array(Buffer.from('teapot')), headers: [['X-A', '1'], ['x-a', '2'], ['X-Flurry-Instance', 'forged'], ['Connection', 'close'], ['Link', 'x']] });
    const reply = await ask(f.port, 'GET', '/svc/room/x');
    expect(reply.status).toBe(418);
    expect(reply.body.toString()).toBe('teapot');
    expect(reply.headers).toMatchObject({ 'x-a': '1, 2', 'x-flurry-instance': 'inst-1', 'x-flurry-host': 'host-2', 'x-flurry-duration-ms': '0.500', 'content-length': '6', link: 'x' });
    expect(reply.headers['x-flurry-error']).toBeUndefined();
  });

  it('refusals in the error shape: no key (the router not asked), an unknown service, a body over the limit, the router\'s failure', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'GET', '/svc/room/x', { headers: { authorization: [] } }), 401, 'unauthorized');
    expect(f.forwarded).toEqual([]);
    expectRefusal(await ask(f.port, 'GET', '/svc/nope/x'), 404, 'not_found', /service "nope" does not exist/);
    expectRefusal(await ask(f.port, 'POST', '/svc/room/x', { body: 'x'.repeat(MAX_BODY + 1) }), 413, 'payload_too_large');
    f.serviceAnswer = () => Promise.reject(new FlurryError('unavailable', 'service "room" has no running instance', { retryAfterSeconds: 1 }));
    const failed = await ask(f.port, 'GET', '/svc/room/x');
    expectRefusal(failed, 503, 'unavailable', /no running instance/);
    expect(failed.headers['retry-after']).toBe('1');
    const head = await ask(f.port, 'HEAD', '/svc/room/x');
    expect(head).toMatchObject({ status: 503, body: Buffer.alloc(0) });
    expect(head.headers).toMatchObject({ 'x-flurry-error': 'unavailable', link: LINK });
  });

  it('the request rate counts service requests', async () => {
    const f = await start({ rate: 1 });
    expect((await ask(f.port, 'GET', '/svc/room/x')).status).toBe(200);
    expectRefusal(await ask(f.port, 'GET', '/svc/room/x'), 429, 'rate_limited', /requests a second/);
    expect(f.forwarded).toHaveLength(1);
  });

  it('the broker away - a service request still goes to the router, which holds it until the broker is back (no 503 at once)', async () => {
    const f = await start({ brokerUp: false });
    expect((await ask(f.port, 'GET', '/svc/room/x')).status).toBe(200);
    expect(f.forwarded).toHaveLength(1);
    expectRefusal(await ask(f.port, 'GET', '/fn/echo'), 503, 'unavailable');
  });

  it('no service name, or a gateway without services - the app\'s own answer (no route)', async () => {
    const f = await start();
    expectRefusal(await ask(f.port, 'GET', '/svc//x'), 404, 'not_found', /no route for GET \/svc\/\/x/);
    expectRefusal(await ask(f.port, 'GET', '/svc/'), 404, 'not_found', /no route for GET \/svc\//);
    expect(f.forwarded).toEqual([]);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const bare = await start({ services: false });
    expectRefusal(await ask(bare.port, 'GET', '/svc/room/x'), 404, 'not_found', /no route for GET \/svc\/room\/x/);
    expect(bare.appRequests).toEqual(['/svc/room/x']);
  });
});

describe('call routes - CALL_ROUTES', () => {
  it.each(CALL_ROUTES.map((r) => [r.method, r.path]))('%s %s - answered in front of the app, by the guest', async (method, path) => {
    const f = await start();
    const name = path.startsWith('/svc') ? 'room' : 'echo';
    const reply = await ask(f.port, method === 'ALL' ? 'PATCH' : method, path.replace(':name', name).replace('*', 'a/b'));
    expect(reply.status).toBe(200);
    expect(reply.headers['x-flurry-host']).toBe(path.startsWith('/svc') ? 'host-2' : 'host-1');
    expect(f.calls.length + f.forwarded.length).toBe(1);
    expect(f.appRequests).toEqual([]);
  });
});
