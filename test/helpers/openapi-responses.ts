/**
 * Every gateway response the suites get through `fetch` (the SDK's too) is
 * checked against that gateway's own /openapi.json: its status must be
 * declared (or fall under `default`), its content type among the declared
 * ones, and a JSON body must match the declared schema (JSON Schema 2020-12,
 * with ajv). A mismatch fails the test that made the request, in afterEach
 * (afterAll for requests of a beforeAll), with the request and what differed;
 * it is not thrown from fetch, where the SDK's retries could swallow it.
 *
 * Installed for every suite by vitest.config.ts (`setupFiles`). Cheap: each
 * gateway's document is fetched once, each schema compiled once, and only
 * JSON bodies are read (a copy of them; SSE and byte streams are left alone).
 *
 * A gateway says where its document is in every answer of its own
 * (`link: </openapi.json>; rel="service-desc"`, RFC 8631); an answer without
 * one from an origin whose document is known (a guest's answer through /fn or
 * /svc) is checked too. Other servers a suite talks to (stub gateways,
 * callback receivers) are never asked for anything.
 */
import { afterAll, afterEach, expect } from 'vitest';
import type { Ajv2020, ValidateFunction } from 'ajv/dist/2020.js';

/** The parts of an OpenAPI document the check reads. */
interface OpenApiDocument {
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: object }> }> }>>;
}

/** A gateway's document, its paths as patterns (most literal first) and its compiled schemas. */
interface GatewayDocument {
  id: string;
  ajv: Ajv2020;
  routes: { template: string; pattern: RegExp; literal: number }[];
  doc: OpenApiDocument;
}

const SERVICE_DESC = /<([^>]+)>\s*;\s*rel="?service-desc"?/;
/**
 * The platform's own fetch, kept on the global: a worker that shares its modules
 * between files (vitest.config.ts) runs this file again for each, and must not
 * wrap the check around the previous file's check.
 */
const REAL_FETCH = Symbol.for('flurry.tests.realFetch');
const realFetch: typeof globalThis.fetch = ((globalThis as { [REAL_FETCH]?: typeof globalThis.fetch })[REAL_FETCH] ??= globalThis.fetch);
/** Each gateway's document, by the document's URL; and that URL by the gateway's origin. */
const documents = new Map<string, Promise<GatewayDocument | undefined>>();
const documentUrls = new Map<string, string>();
const validators = new Map<string, ValidateFunction>();
const mismatches: string[] = [];

function documentOf(id: string): Promise<GatewayDocument | undefined> {
  let got = documents.get(id);
  if (!got) {
    got = loadDocument(id);
    documents.set(id, got);
    // A gateway that was down when asked is asked again next time.
    void got.then((d) => d ?? documents.delete(id), () => documents.delete(id));
  }
  return got;
}

async function loadDocument(id: string): Promise<GatewayDocument | undefined> {
  const res = await realFetch(id).catch(() => undefined);
  if (!res?.ok) return undefined;
  const doc = (await res.json()) as OpenApiDocument & { openapi?: string };
  if (typeof doc.openapi !== 'string' || !doc.openapi.startsWith('3.1')) throw new Error(`${id} is not an OpenAPI 3.1 document`);
  // strict off: the document holds OpenAPI's own keywords beside the schemas; formats (byte, binary) are descriptions here.
  // Loaded with the first gateway's document: most suites (unit tests) never meet one.
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: false });
  ajv.addSchema(doc, id);
  const routes = Object.keys(doc.paths).map((template) => {
    // `{path}` of a passthrough (/fn, /svc) holds the rest of the path, slashes included.
    const source = template.split('/').map((seg) => (seg === '{path}' ? '.*' : /^\{.+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('/');
    return { template, pattern: new RegExp(`^${source}$`), literal: template.split('/').filter((s) => s && !s.startsWith('{')).length };
  }).sort((a, b) => b.literal - a.literal);
  return { id, ajv, routes, doc };
}

function pointer(...parts: string[]): string {
  return parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function validator(gateway: GatewayDocument, path: string): ValidateFunction {
  const key = `${gateway.id}#/${path}`;
  let v = validators.get(key);
  if (!v) {
    v = gateway.ajv.getSchema(key);
    if (!v) throw new Error(`no schema at ${key}`);
    validators.set(key, v);
  }
  return v;
}

/** What is wrong with `res` as an answer to `method url`, per the gateway's document; undefined when nothing is. */
async function mismatch(gateway: GatewayDocument, method: string, url: URL, res: Response): Promise<string | undefined> {
  const route = gateway.routes.find((r) => r.pattern.test(url.pathname));
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const platformError = res.headers.get('x-flurry-error') !== null;
  const operation = route && gateway.doc.paths[route.template]![method.toLowerCase()];
  // Every refusal or failure of the platform, on any route or none: the error shape.
  if (platformError) {
    const wrong = await checkJson(gateway, pointer('components', 'schemas', 'Error'), res);
    if (wrong || !operation) return wrong;
  }
  if (!operation) return route ? `${method} is not declared for ${route.template}` : `no path of the document matches ${url.pathname}`;
  const status = String(res.status);
  const declared = operation.responses?.[status] ? status : operation.responses?.default ? 'default' : undefined;
  if (!declared) return `status ${status} is not declared for ${method} ${route.template}`;
  const content = operation.responses![declared]!.content;
  if (!content) return undefined;
  const mediaType = content[type] ? type : content['*/*'] ? '*/*' : undefined;
  if (!mediaType) return `content type "${type}" is not declared for ${status} of ${method} ${route.template} (${Object.keys(content).join(', ')})`;
  // A guest's answer (*/*) is any bytes; a platform refusal among them has x-flurry-error, checked above.
  if (mediaType !== 'application/json' || !content[mediaType]!.schema) return undefined;
  return checkJson(gateway, pointer('paths', route.template, method.toLowerCase(), 'responses', declared, 'content', mediaType, 'schema'), res);
}

async function checkJson(gateway: GatewayDocument, path: string, res: Response): Promise<string | undefined> {
  const text = await res.clone().text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `the body is not JSON: ${text.slice(0, 200)}`;
  }
  const validate = validator(gateway, path);
  if (validate(body)) return undefined;
  const e = validate.errors?.[0];
  return `the body does not match #/${path}: ${e?.instancePath || '(root)'} ${e?.message ?? ''} ${e?.params ? JSON.stringify(e.params) : ''}; body: ${text.slice(0, 300)}`;
}

async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await realFetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  const link = SERVICE_DESC.exec(res.headers.get('link') ?? '')?.[1];
  if (link) documentUrls.set(url.origin, new URL(link, url).href);
  const documentUrl = documentUrls.get(url.origin);
  if (!documentUrl) return res;
  const gateway = await documentOf(documentUrl);
  if (!gateway) return res;
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const wrong = await mismatch(gateway, method, url, res);
  if (wrong) mismatches.push(`${expect.getState().currentTestName ?? '(setup)'}: ${method} ${url.pathname}${url.search} answered ${res.status}: ${wrong}`);
  return res;
}

globalThis.fetch = checkedFetch as typeof globalThis.fetch;

function failOnMismatches(): void {
  if (mismatches.length === 0) return;
  const found = mismatches.splice(0);
  throw new Error(`gateway responses that do not match /openapi.json:\n  ${found.join('\n  ')}`);
}

afterEach(failOnMismatches);
afterAll(failOnMismatches);

/** The mismatches found so far, taken (for the test of this check itself). */
export function takeMismatches(): string[] {
  return mismatches.splice(0);
}
