/** The client against a stub that speaks the gateway's contract: request shapes, answers, and error mapping. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Flurry, FlurryApiError, FlurryConnectionError, FlurryTimeoutError, type InvokeResponse } from './index.js';
import { STUB_HOSTS, STUB_MOVE } from './testing/stub-fleet.js';
import { EMPTY_WASM_MODULE, startStubGateway, type StubGateway } from './testing/stub-gateway.js';
import { unusedPort } from './testing/unused-port.js';

let gateway: StubGateway;
let flurry: Flurry;

beforeAll(async () => {
  gateway = await startStubGateway();
  flurry = new Flurry({ url: gateway.url });
});
afterAll(() => gateway.close());

function lastRequest() {
  return gateway.requests[gateway.requests.length - 1];
}

async function apiErrorOf(promise: Promise<unknown>): Promise<FlurryApiError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(FlurryApiError);
  return err as FlurryApiError;
}

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}

describe('functions', () => {
  it('functions - deploy sends the module as application/wasm and returns the record', async () => {
    const fn = await flurry.functions.deploy('hello', EMPTY_WASM_MODULE);
    expect(fn).toMatchObject({ name: 'hello', size: EMPTY_WASM_MODULE.length, exports: ['handle', 'init'] });
    expect(fn.digest).toMatch(/^[0-9a-f]{64}$/);
    const request = lastRequest();
    expect(request.method).toBe('PUT');
    expect(request.url).toBe('/v1/functions/hello');
    expect(request.headers['content-type']).toBe('application/wasm');
    expect(new Uint8Array(request.body)).toEqual(EMPTY_WASM_MODULE);
  });

  it('functions - deploy of a refused module throws invalid_module with the message', async () => {
    const err = await apiErrorOf(flurry.functions.deploy('bad', new TextEncoder().encode('not wasm')));
    expect(err).toMatchObject({ name: 'FlurryApiError', status: 400, code: 'invalid_module', message: 'not a wasm module: bad magic', requestId: 'req-1' });
  });

  it('functions - list, get and delete read and remove deployed functions', async () => {
    await flurry.functions.deploy('listed', EMPTY_WASM_MODULE);
    expect((await flurry.functions.list()).map((fn) => fn.name)).toContain('listed');
    expect(await flurry.functions.get('listed')).toMatchObject({ name: 'listed', tenant: 'default' });
    await flurry.functions.delete('listed');
    expect(lastRequest()).toMatchObject({ method: 'DELETE', url: '/v1/functions/listed' });
    expect((await flurry.functions.list()).map((fn) => fn.name)).not.toContain('listed');
  });

  it('functions - get of a missing function throws not_found with status and request id', async () => {
    const err = await apiErrorOf(flurry.functions.get('missing'));
    expect(err).toMatchObject({ status: 404, code: 'not_found', requestId: 'req-1', retryAfterSeconds: undefined });
  });
});

describe('invoke', () => {
  it('invoke - an object body is sent as JSON with POST', async () => {
    const echo = (await flurry.functions.invoke('echo', { name: 'Ada' })).json<Echo>();
    expect(echo).toMatchObject({ method: 'POST', path: '/', body: '{"name":"Ada"}' });
    expect(echo.headers['content-type']).toBe('application/json');
  });

  it('invoke - a string is sent as text, bytes as octet-stream, no body as GET', async () => {
    const text = (await flurry.functions.invoke('echo', 'hi')).json<Echo>();
    expect(text).toMatchObject({ method: 'POST', body: 'hi' });
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    const bytes = (await flurry.functions.invoke('echo', new Uint8Array([104, 105]))).json<Echo>();
    expect(bytes.headers['content-type']).toBe('application/octet-stream');
    const none = (await flurry.functions.invoke('echo')).json<Echo>();
    expect(none).toMatchObject({ method: 'GET', body: '' });
  });

  it('invoke - method, path, query and headers reach the guest', async () => {
    const echo = (
      await flurry.functions.invoke('echo', 'x', {
        method: 'put',
        path: 'items/7?full=1',
        query: { sort: 'asc' },
        headers: { 'x-user': 'ada', 'content-type': 'text/csv' },
      })
    ).json<Echo>();
    expect(echo).toMatchObject({ method: 'PUT', path: '/items/7', query: 'full=1&sort=asc' });
    expect(echo.headers).toMatchObject({ 'x-user': 'ada', 'content-type': 'text/csv' });
  });

  it('invoke - the response carries status, headers, body and where and how fast it ran', async () => {
    const response = await flurry.functions.invoke('echo');
    expect(response).toMatchObject({ status: 200, ok: true, requestId: 'req-1', hostId: 'host-a', durationMs: 12 });
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(response.text())).toEqual(response.json());
    const binary = await flurry.functions.invoke('binary');
    expect(binary.body).toEqual(new Uint8Array([0xff, 0x00, 0x80]));
  });

  it("invoke - a guest's own 4xx with an error-shaped body is a response, not an exception", async () => {
    const response: InvokeResponse = await flurry.functions.invoke('teapot');
    expect(response).toMatchObject({ status: 418, ok: false, hostId: 'host-a' });
    expect(response.json()).toEqual({ error: { code: 'teapot', message: 'short and stout' } });
  });

  it('invoke - a platform error marked x-flurry-error throws even when it names a host', async () => {
    const err = await apiErrorOf(flurry.functions.invoke('trap'));
    expect(err).toMatchObject({ status: 502, code: 'guest_trap', message: 'unreachable executed' });
  });

  it('invoke - no_capacity throws with the Retry-After seconds', async () => {
    const err = await apiErrorOf(new Flurry({ url: gateway.url, retries: 0 }).functions.invoke('busy'));
    expect(err).toMatchObject({ status: 503, code: 'no_capacity', retryAfterSeconds: 7, requestId: 'req-1' });
  });

  it('invoke - an unmarked error from a proxy in front of the gateway throws, coded by its status', async () => {
    const err = await apiErrorOf(flurry.functions.invoke('behind-proxy'));
    expect(err).toMatchObject({ status: 502, code: 'unavailable', requestId: undefined });
  });

  it('invoke - an unknown function throws not_found', async () => {
    expect(await apiErrorOf(flurry.functions.invoke('nobody'))).toMatchObject({ status: 404, code: 'not_found' });
  });
});

describe('hosts', () => {
  it('hosts - list returns the host records', async () => {
    expect(await flurry.hosts.list()).toEqual(STUB_HOSTS);
  });
});

describe('services', () => {
  function sentJson(): unknown {
    return JSON.parse(lastRequest().body.toString('utf8'));
  }

  it('services - create sends the spec as JSON with init as base64 (bytes or a string as UTF-8) and returns the record', async () => {
    const svc = await flurry.services.create({ name: 'chat', function: 'room', init: '{"ballastMiB":8}', min: 2, max: 8, targetConcurrency: 4 });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/services' });
    expect(lastRequest().headers['content-type']).toBe('application/json');
    expect(sentJson()).toEqual({ name: 'chat', function: 'room', init: btoa('{"ballastMiB":8}'), min: 2, max: 8, targetConcurrency: 4 });
    expect(svc).toMatchObject({ name: 'chat', function: 'room', min: 2, max: 8, targetConcurrency: 4, instances: [{ id: 'chat-0', host: 'host-a' }, { id: 'chat-1' }] });
    await flurry.services.create({ name: 'bytes', function: 'room', init: new Uint8Array([0xff, 0x00, 0x80]) });
    expect(sentJson()).toEqual({ name: 'bytes', function: 'room', init: '/wCA' });
  });

  it('services - a refused create throws the gateway error: not deployed, name taken', async () => {
    const missing = await apiErrorOf(flurry.services.create({ name: 'orphan', function: 'missing' }));
    expect(missing).toMatchObject({ status: 404, code: 'not_found', message: 'cannot create service "orphan": function "missing" is not deployed' });
    await flurry.services.create({ name: 'taken', function: 'room' });
    expect(await apiErrorOf(flurry.services.create({ name: 'taken', function: 'room' }))).toMatchObject({ status: 409, code: 'conflict' });
  });

  it('services - list, get, update and delete', async () => {
    await flurry.services.create({ name: 'scaled', function: 'room', min: 1 });
    expect((await flurry.services.list()).map((svc) => svc.name)).toContain('scaled');
    expect(lastRequest()).toMatchObject({ method: 'GET', url: '/v1/services' });
    expect(await flurry.services.get('scaled')).toMatchObject({ name: 'scaled', min: 1, max: 1 });
    const updated = await flurry.services.update('scaled', { min: 3, targetConcurrency: 2 });
    expect(lastRequest()).toMatchObject({ method: 'PATCH', url: '/v1/services/scaled' });
    expect(sentJson()).toEqual({ min: 3, targetConcurrency: 2 });
    expect(updated).toMatchObject({ min: 3, max: 3, targetConcurrency: 2 });
    expect(updated.instances).toHaveLength(3);
    await flurry.services.delete('scaled');
    expect(lastRequest()).toMatchObject({ method: 'DELETE', url: '/v1/services/scaled' });
    const gone = await apiErrorOf(flurry.services.get('scaled'));
    expect(gone).toMatchObject({ status: 404, code: 'not_found', message: 'service "scaled" does not exist' });
  });

  it('services - migrate posts the options to the instance and returns the report', async () => {
    await flurry.services.create({ name: 'moving', function: 'room' });
    const report = await flurry.services.migrate('moving-0', { target: 'host-c', maxRounds: 2, downtimeBudgetMs: 10 });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/instances/moving-0/migrate' });
    expect(sentJson()).toEqual({ target: 'host-c', maxRounds: 2, downtimeBudgetMs: 10 });
    expect(report).toMatchObject({ source: 'host-a', target: 'host-c', stopReason: 'budget', downtimeMs: 3.25, placementMs: 0.75 });
    expect(report.rounds).toHaveLength(2);
    await flurry.services.migrate('moving-0');
    expect(sentJson()).toEqual({});
    const busy = await apiErrorOf(flurry.services.migrate('busy-1'));
    expect(busy).toMatchObject({ status: 409, code: 'conflict', message: 'instance busy-1 is being migrated already (to host host-b)' });
  });
});

describe('host control', () => {
  it('host control - drain posts to the host and returns the moves and failures', async () => {
    expect(await flurry.hosts.drain('host-a')).toEqual({ hostId: 'host-a', moved: [STUB_MOVE], failed: [] });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/hosts/host-a/drain' });
    expect((await flurry.hosts.drain('host-b')).failed).toEqual([{ instanceId: 'inst-9', error: 'no host can take it' }]);
  });

  it('host control - activate posts to the host; an unknown host throws not_found', async () => {
    await flurry.hosts.activate('host-b');
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/hosts/host-b/activate' });
    const err = await apiErrorOf(flurry.hosts.activate('host-zz'));
    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'host-zz is not a live host' });
  });

  it('host control - consolidation returns the hosts and the latest moves', async () => {
    const state = await flurry.hosts.consolidation();
    expect(lastRequest()).toMatchObject({ method: 'GET', url: '/v1/consolidation' });
    expect(state.moves).toEqual([STUB_MOVE]);
    expect(state.hosts.map((h) => [h.id, h.state, h.instances, h.releasable])).toEqual([['host-a', 'active', 1, false], ['host-b', 'drained', 0, true]]);
  });
});

describe('client', () => {
  it('client - sends the API key as a bearer token, and no authorization without one', async () => {
    await new Flurry({ url: gateway.url, apiKey: 's3cret' }).hosts.list();
    expect(lastRequest().headers.authorization).toBe('Bearer s3cret');
    await flurry.hosts.list();
    expect(lastRequest().headers.authorization).toBeUndefined();
  });

  it('client - keeps a path prefix of the base URL and uses the fetch it is given', async () => {
    const seen: string[] = [];
    const fetch = async (input: string | URL | Request) => {
      seen.push(String(input));
      return new Response(JSON.stringify({ hosts: [] }), { headers: { 'content-type': 'application/json' } });
    };
    await new Flurry({ url: 'http://gateway.test/flurry/', fetch }).hosts.list();
    expect(seen).toEqual(['http://gateway.test/flurry/v1/hosts']);
  });

  it('client - a 2xx body that is not JSON throws internal', async () => {
    const fetch = async () => new Response('<html>', { status: 200 });
    const err = await apiErrorOf(new Flurry({ url: 'http://gateway.test', fetch }).functions.list());
    expect(err).toMatchObject({ status: 200, code: 'internal' });
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it('client - connection refused throws FlurryConnectionError with the cause', async () => {
    const port = await unusedPort();
    const err = await new Flurry({ url: `http://127.0.0.1:${port}`, retries: 0 }).hosts.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlurryConnectionError);
    expect(err).not.toBeInstanceOf(FlurryTimeoutError);
    expect(err).toMatchObject({ name: 'FlurryConnectionError' });
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('client - no answer within timeoutMs throws FlurryTimeoutError', async () => {
    const err = await new Flurry({ url: gateway.url, timeoutMs: 100 }).functions.invoke('slow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlurryTimeoutError);
    expect(err).toBeInstanceOf(FlurryConnectionError);
    expect(err).toMatchObject({ name: 'FlurryTimeoutError' });
  });
});

describe('retries', () => {
  /** A client that retries fast, so the tests do not wait for the default back-off. */
  const quick = () => new Flurry({ url: gateway.url, retries: { count: 3, delayMs: 5 } });

  function requestsTo(method: string, url: string) {
    return gateway.requests.filter((request) => request.method === method && request.url === url);
  }

  it('retries - a GET answered 503 with Retry-After is sent again after that long, then succeeds', async () => {
    gateway.failNext('GET', '/v1/hosts', { status: 503, retryAfter: '1' });
    const before = requestsTo('GET', '/v1/hosts').length;
    const started = performance.now();
    expect(await flurry.hosts.list()).toEqual(STUB_HOSTS);
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(requestsTo('GET', '/v1/hosts').length - before).toBe(2);
  });

  it('retries - 429s, 503s and cut connections are retried for idempotent methods until the count is spent', async () => {
    await flurry.functions.deploy('kept', EMPTY_WASM_MODULE);
    gateway.failNext('PUT', '/v1/functions/kept', 'reset', { status: 429 });
    await quick().functions.deploy('kept', EMPTY_WASM_MODULE);
    gateway.failNext('DELETE', '/v1/functions/kept', { status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
    const before = requestsTo('DELETE', '/v1/functions/kept').length;
    expect(await apiErrorOf(quick().functions.delete('kept'))).toMatchObject({ status: 503, code: 'unavailable' });
    // The first attempt and 3 retries, all refused: the last answer is the error.
    expect(requestsTo('DELETE', '/v1/functions/kept').length - before).toBe(4);
  });

  it('retries - a POST without an Idempotency-Key is not retried, unless the caller opts in', async () => {
    gateway.failNext('POST', '/fn/echo/', { status: 503, retryAfter: '0' });
    const before = requestsTo('POST', '/fn/echo/').length;
    expect(await apiErrorOf(quick().functions.invoke('echo', 'once'))).toMatchObject({ status: 503 });
    expect(requestsTo('POST', '/fn/echo/').length - before).toBe(1);
    gateway.failNext('POST', '/fn/echo/', 'reset');
    const echo = await quick().functions.invoke('echo', 'twice is fine', { retry: true });
    expect(echo.json<Echo>()).toMatchObject({ method: 'POST', body: 'twice is fine' });
    expect(requestsTo('POST', '/fn/echo/').length - before).toBe(3);
  });

  it("retries - a guest's own 503 is its answer, never retried", async () => {
    const before = requestsTo('GET', '/fn/unwell/').length;
    const response = await quick().functions.invoke('unwell');
    expect(response).toMatchObject({ status: 503, ok: false, hostId: 'host-a' });
    expect(requestsTo('GET', '/fn/unwell/').length - before).toBe(1);
  });

  it('retries - a refused connection is retried, then throws FlurryConnectionError; retries 0 sends once', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}`;
    let calls = 0;
    const fetch: typeof globalThis.fetch = (input, init) => {
      calls++;
      return globalThis.fetch(input, init);
    };
    expect(await new Flurry({ url, fetch, retries: { count: 2, delayMs: 5 } }).hosts.list().catch((e: unknown) => e)).toBeInstanceOf(FlurryConnectionError);
    expect(calls).toBe(3);
    calls = 0;
    expect(await new Flurry({ url, fetch, retries: 0 }).hosts.list().catch((e: unknown) => e)).toBeInstanceOf(FlurryConnectionError);
    expect(calls).toBe(1);
  });

  it('retries - a Retry-After beyond withinMs is not waited for: the 503 is thrown at once', async () => {
    gateway.failNext('GET', '/v1/functions', { status: 503, retryAfter: '120' });
    const before = requestsTo('GET', '/v1/functions').length;
    expect(await apiErrorOf(flurry.functions.list())).toMatchObject({ status: 503, retryAfterSeconds: 120 });
    expect(requestsTo('GET', '/v1/functions').length - before).toBe(1);
  });

  it('retries - bad settings are refused when the client is made', () => {
    expect(() => new Flurry({ url: gateway.url, retries: -1 })).toThrow(RangeError);
    expect(() => new Flurry({ url: gateway.url, retries: { withinMs: Number.NaN } })).toThrow(RangeError);
  });
});
