/**
 * The API's one declaration, seen from outside: /openapi.json is a valid
 * OpenAPI 3.1 document with every route of the app, request schemas refuse
 * unknown fields with the API's error shape, /docs renders from the
 * gateway's own files, the SDK's types are the ones generated from the
 * document, and the suites' response check (helpers/openapi-responses.ts)
 * catches a body that differs from it. The app runs over fakes (no fleet);
 * the response check is run against it served on a port.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import type { z } from '@hono/zod-openapi';
import type { components } from '../sdk/src/api-types.gen.js';
import type * as Sdk from '../sdk/src/types.js';
import type { Flurry } from '../sdk/src/index.js';
import type * as Records from '../gateway/src/api/records.js';
import { fakeFunction, fakeGateway } from './helpers/fake-gateway.js';
import { takeMismatches } from './helpers/openapi-responses.js';
import { CALL_ROUTES } from '../gateway/src/call-route/call-routes.js';

type Schemas = components['schemas'];
interface Operation {
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, unknown> }>;
  security?: unknown[];
}
interface Schema { $ref?: string; additionalProperties?: boolean }
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes: Record<string, unknown> };
}

const { app, send } = fakeGateway();
/** The document as the gateway sends it, and parsed. */
let docText: string;
let doc: Document;

beforeAll(async () => {
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  docText = await res.text();
  doc = JSON.parse(docText) as Document;
});

describe('openapi - the document', () => {
  it('GET /openapi.json - valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(JSON.parse(docText));
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('every route of the app is in the document, and every documented path is a route', () => {
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    const routes = new Set<string>();
    // The function call routes are served in front of the app (gateway/src/call-route/): not among its own.
    for (const r of [...app.routes, ...CALL_ROUTES]) {
      if (r.path === '/*') continue; // middleware
      // Hono's /x/:id is OpenAPI's /x/{id}; a passthrough's /* is its {path}.
      const path = r.path.replace(/:([^/]+)/g, '{$1}').replace(/\/\*$/, '/{path}');
      for (const method of r.method === 'ALL' ? ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] : [r.method]) routes.add(`${method} ${path}`);
    }
    expect([...routes].filter((r) => !documented.has(r)), 'routes missing from the document').toEqual([]);
    expect([...documented].filter((d) => !routes.has(d)), 'documented routes the app lacks').toEqual([]);
    expect(routes.size).toBeGreaterThan(40);
  });

  it('security - a bearer API key, needed everywhere but the health checks and the reference', () => {
    expect(doc.components.securitySchemes).toEqual({ apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    const open = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.security?.length === 0).map(([m]) => `${m} ${path}`));
    expect(open.sort()).toEqual(['get /docs', 'get /docs/{asset}', 'get /healthz', 'get /openapi.json', 'get /readyz', 'get /ui', 'get /ui/', 'get /ui/{file}']);
  });

  it('every JSON request body is a strict object (additionalProperties: false)', () => {
    const bodies = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).flatMap(([m, op]) => {
      const schema = op.requestBody?.content['application/json']?.schema;
      if (!schema) return [];
      const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!]! : schema;
      return [{ route: `${m} ${path}`, additionalProperties: resolved.additionalProperties }];
    }));
    expect(bodies.length).toBeGreaterThanOrEqual(4);
    for (const b of bodies) expect(b, b.route).toMatchObject({ additionalProperties: false });
  });

  it('raw bodies are application/octet-stream, the job events text/event-stream', () => {
    for (const path of ['/v1/functions/{name}', '/v1/data/{name}']) expect(Object.keys(doc.paths[path]!.put!.requestBody!.content)).toEqual(['application/octet-stream']);
    expect(Object.keys(doc.paths['/v1/functions/{name}/invoke']!.post!.requestBody!.content)).toEqual(['application/octet-stream']);
    expect(Object.keys(doc.paths['/v1/jobs/{id}/events']!.get!.responses['200']!.content!)).toEqual(['text/event-stream']);
  });
});

describe('openapi - requests refused by their schema', () => {
  async function refusal(res: Response): Promise<string> {
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(res.headers.get('x-flurry-error')).toBe('bad_request');
    const body = JSON.parse(text) as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error.code).toBe('bad_request');
    return body.error.message;
  }

  it.each([
    ['POST', '/v1/jobs', { function: 'mapper', clones: 1, colour: 'red' }],
    ['POST', '/v1/services', { name: 'svc', function: 'handler', colour: 'red' }],
    ['POST', '/v1/instances/i1/migrate', { colour: 'red' }],
  ])('%s %s with an unknown field - 400 bad_request naming it', async (method, path, body) => {
    expect(await refusal(await send(method, path, body))).toBe('unknown field "colour"');
  });

  it('GET /v1/jobs with an unknown query parameter - 400 bad_request naming it', async () => {
    expect(await refusal(await send('GET', '/v1/jobs?limit=5&colour=red'))).toBe('unknown query parameter "colour"');
  });

  it('GET /v1/jobs?limit=0 - 400 bad_request naming the parameter', async () => {
    expect(await refusal(await send('GET', '/v1/jobs?limit=0'))).toBe('query parameter "limit" must be an integer from 1 to 1000');
  });
});

describe('openapi - the reference page', () => {
  const keyed = fakeGateway({ keys: [{ tenant: 't', role: 'user', sha256: createHash('sha256').update('k').digest('hex') }] });

  it('every answer of the gateway\'s own routes links to the document (RFC 8631) and carries its request id', async () => {
    for (const res of [await app.request('/v1/functions'), await app.request('/v1/functions/absent'), await keyed.app.request('/v1/jobs')]) {
      expect(res.headers.get('link')).toBe('</openapi.json>; rel="service-desc"');
      expect(res.headers.get('x-flurry-request-id')).toMatch(/^req/);
    }
  });

  it('/openapi.json and /docs answer without an API key; an API route does not', async () => {
    expect((await keyed.app.request('/openapi.json')).status).toBe(200);
    expect((await keyed.app.request('/docs')).status).toBe(200);
    expect((await keyed.app.request('/v1/functions')).status).toBe(401);
  });

  it('GET /docs - an HTML page that loads Swagger UI from the gateway itself, and every file it loads is served', async () => {
    const res = await app.request('/docs');
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await res.text();
    // Nothing from another origin: every src and href is relative to the gateway.
    const links = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(links.sort()).toEqual(['docs/start.js', 'docs/swagger-ui-bundle.js', 'docs/swagger-ui.css']);
    expect(page).not.toMatch(/https?:\/\//);
    for (const link of links) {
      const asset = await app.request(`/${link}`);
      expect(asset.status, link).toBe(200);
      expect(asset.headers.get('content-type'), link).toMatch(link.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      const text = await asset.text();
      if (link.endsWith('bundle.js')) expect(text).toContain('SwaggerUIBundle');
      if (link.endsWith('start.js')) expect(text).toMatch(/url: 'openapi\.json'.*validatorUrl: null/);
    }
    for (const other of ['package.json', 'toString', '__proto__', '..%2Fpackage.json']) expect((await app.request(`/docs/${other}`)).status, other).toBe(404);
  });
});

/** Debian's Chromium (the set-up installs it for the browser tests): CHROMIUM_BIN, else on the PATH. */
const chromium = process.env.CHROMIUM_BIN ?? (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'chromium')).find((p) => existsSync(p));

describe('openapi - the reference page in a browser', () => {
  let server: ServerType;
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
        url = `http://127.0.0.1:${info.port}`;
        resolve();
      });
    });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.skipIf(!chromium)('GET /docs in headless Chromium, every other host unreachable - Swagger UI renders every operation of the document', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'flurry-docs-'));
    try {
      const { stdout } = await promisify(execFile)(chromium!, [
        '--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`,
        // Any name but the gateway's address fails: the page must need nothing from another site.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--virtual-time-budget=10000', '--dump-dom', `${url}/docs`,
      ], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
      const rendered = [...stdout.matchAll(/class="opblock-summary-path" data-path="([^"]+)"/g)].map((m) => m[1]!);
      const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
      expect(rendered.length, stdout.slice(0, 500)).toBe(operations);
      expect(new Set(rendered)).toEqual(new Set(Object.keys(doc.paths)));
      expect(stdout).toContain('Flurry');
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });
});

describe('openapi - the SDK\'s types', () => {
  it('sdk/src/api-types.gen.ts is openapi-typescript\'s output for the document (npm run api-types writes it)', async () => {
    const generated = `// The API's types, generated from /openapi.json by openapi-typescript: npm run api-types.\n${astToString(await openapiTS(docText))}`;
    await expect(generated).toMatchFileSnapshot('../sdk/src/api-types.gen.ts');
  });

  it('the SDK\'s public types are the generated ones, and the gateway\'s schemas declare the same shapes (tsc checks this file)', () => {
    expectTypeOf<Sdk.JobRecord>().toEqualTypeOf<Schemas['JobRecord']>();
    expectTypeOf<Sdk.ServiceRecord>().toEqualTypeOf<Schemas['ServiceRecord']>();
    expectTypeOf<Sdk.HostRecord>().toEqualTypeOf<Schemas['HostRecord']>();
    expectTypeOf<Sdk.ErrorCode>().toEqualTypeOf<Schemas['ErrorCode']>();
    expectTypeOf<Awaited<ReturnType<Flurry['functions']['logs']>>>().toEqualTypeOf<Schemas['GuestLogLine'][]>();
    expectTypeOf<Awaited<ReturnType<Flurry['jobs']['get']>>>().toEqualTypeOf<Schemas['JobRecord']>();
    expectTypeOf<Awaited<ReturnType<Flurry['functions']['list']>>>().toEqualTypeOf<Schemas['FunctionRecord'][]>();
    expectTypeOf<Awaited<ReturnType<Flurry['services']['migrate']>>>().toEqualTypeOf<Schemas['MigrationReport']>();
    expectTypeOf<z.output<typeof Records.FunctionRecord>>().toEqualTypeOf<Schemas['FunctionRecord']>();
    expectTypeOf<z.output<typeof Records.DataRecord>>().toEqualTypeOf<Schemas['DataRecord']>();
    expectTypeOf<z.output<typeof Records.HostMove>>().toEqualTypeOf<Schemas['HostMove']>();
  });
});

describe('openapi - the suites\' response check', () => {
  // The gateway answers GET /v1/functions with a field its document does not declare.
  const drifted = fakeGateway({ functions: [{ ...fakeFunction('mapper', ['run']), colour: 'red' } as ReturnType<typeof fakeFunction>] });
  let server: ServerType;
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => {
      server = serve({ fetch: drifted.app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
        url = `http://127.0.0.1:${info.port}`;
        resolve();
      });
    });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a body with an undeclared field - the mismatch is recorded against the test that fetched it', async () => {
    const res = await fetch(`${url}/v1/functions`);
    expect(res.status).toBe(200);
    // The caller still gets the whole body: the check read a copy.
    expect((await res.json()) as object).toMatchObject({ functions: [{ name: 'mapper', colour: 'red' }] });
    const found = takeMismatches();
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^openapi - the suites' response check > a body with an undeclared field.*GET \/v1\/functions answered 200: the body does not match .*\/functions\/0 must NOT have additional properties.*colour/);
  });

  it('a refusal - checked against the error shape; a declared answer passes', async () => {
    expect((await fetch(`${url}/v1/functions/absent`)).status).toBe(404);
    expect((await fetch(`${url}/v1/nothing-here`)).status).toBe(404);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(takeMismatches()).toEqual([]);
  });
});
