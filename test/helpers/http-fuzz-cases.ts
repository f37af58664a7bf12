/**
 * Hostile HTTP requests for the gateway fuzz (test/http-fuzz.test.ts), made
 * from a seed so that a failing run can be replayed: ids in paths with
 * control characters, percent-encoded NULs, spaces, dot segments, NATS
 * wildcards and long unicode; methods; bodies of wrong types and shapes;
 * query strings; huge and many headers. Each request is raw bytes for
 * raw-http.ts, with a label that says how it was made.
 */
import { createApp } from '../../gateway/src/app.js';
import { CALL_ROUTES } from '../../gateway/src/call-route/call-routes.js';
import { KeyRing } from '../../gateway/src/auth/key-ring.js';

export interface GatewayRoute {
  method: string;
  path: string;
}

/**
 * Every route of the gateway: the Hono app's, read from `app.routes` of an app
 * built with stand-in dependencies (routes are only registered, never
 * called), so a route added later is fuzzed without anyone listing it; and the
 * function call routes served in front of it (`CALL_ROUTES`).
 */
export function gatewayRoutes(): GatewayRoute[] {
  const stub: any = new Proxy(function () {}, { get: () => stub, apply: () => stub, construct: () => stub });
  const app = createApp({
    link: stub, registry: stub, invoker: stub, fleet: stub, log: stub, maxBodyBytes: 1, maxModuleBytes: 1, auth: KeyRing.none(), callbacks: stub,
    // The job routes make a JetStream client of the connection when registered: it only reads its options.
    jobs: { fabric: { nc: { options: {} } } } as never,
    data: stub, services: stub, hostControl: stub, guestLogs: stub,
  });
  const seen = new Set<string>();
  const routes: GatewayRoute[] = [];
  for (const r of [...app.routes, ...CALL_ROUTES]) {
    if (r.path === '/*') continue; // middleware
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    routes.push({ method: r.method, path: r.path });
  }
  return routes;
}

export interface FuzzRequest {
  /** The route it was made for: `POST /v1/jobs`. */
  route: string;
  /** What the request is, for failure messages: method, path and how its parts were made. */
  label: string;
  method: string;
  bytes: Buffer;
}

/** Names of objects that exist while the fuzz runs, so that some requests get past the lookup to the parsing behind it. */
export interface KnownObjects {
  /** A function with `run` (jobs) and `handle` (calls). */
  functionName: string;
  /** The function of the service. */
  serviceFunction: string;
  serviceName: string;
  dataName: string;
  jobId: string;
  instanceId: string;
}

type Rng = () => number;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
const chance = (rng: Rng, p: number) => rng() < p;

/** Every byte as %XX. */
const percent = (bytes: Buffer | string) => [...Buffer.from(bytes)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** Path segments exactly as they go on the wire: some the server's parser refuses, most it passes to the routes. */
function hostileSegment(rng: Rng): string {
  return pick(rng, [
    () => percent('\0'),
    () => `a${percent('\0')}b`,
    () => percent(String.fromCharCode(Math.floor(rng() * 32))),
    () => percent('\r\n') + 'x',
    () => '%20', () => 'a%20b', () => '%09',
    () => '.', () => '..', () => '%2e', () => '%2e%2e', () => '...', () => 'a.b', () => 'a..b',
    () => '..%2f..%2fetc', () => '%2f', () => 'a%2fb',
    () => '*', () => '>', () => 'a.*', () => 'a.>', () => '%2A', () => '%3E', () => '*.*.>', () => '$JS.API.STREAM.DELETE.x', () => '_INBOX.x',
    () => percent('é'.repeat(1 + Math.floor(rng() * 3000))),
    () => percent('𝔘'.repeat(1 + Math.floor(rng() * 2000))),
    () => percent('\u202e\u200b\ufeff'),
    () => '%ff%fe', () => '%c0%af', () => '%ed%a0%80', () => '%', () => '%zz', () => '%%%',
    () => 'a'.repeat(1 + Math.floor(rng() * 200)), () => 'b'.repeat(5000 + Math.floor(rng() * 20_000)),
    () => 'UPPER', () => '-dash', () => 'x'.repeat(64), () => '_',
    () => '-1', () => '1e3', () => '1.5', () => 'NaN', () => 'Infinity', () => '0x10', () => '4294967296', () => '9'.repeat(400),
    () => '__proto__', () => 'constructor', () => 'prototype', () => 'toString', () => 'hasOwnProperty',
    // Raw bytes the HTTP parser should refuse: a space, a tab, a NUL, a DEL, non-ASCII.
    () => 'a b', () => 'a\tb', () => 'a\0b', () => '\x7f', () => 'ü',
  ])();
}

/** A path parameter: mostly hostile, else the name of an object that exists. A DELETE never names one: the rest of the fuzz needs them. */
function segmentFor(rng: Rng, method: string, param: string, known: KnownObjects): string {
  if (method === 'DELETE' || !chance(rng, 0.3)) return hostileSegment(rng);
  if (param === 'i') return pick(rng, ['0', '1', '-1', '1024', '0.5', '01']);
  if (param === 'name') return pick(rng, [known.functionName, known.serviceName, known.dataName]);
  return pick(rng, [known.jobId, known.instanceId, `${known.jobId}x`]);
}

/** A route path with each `:param` and a trailing `*` filled in. */
function fillPath(rng: Rng, method: string, path: string, known: KnownObjects): string {
  let out = path.replace(/:(\w+)/g, (_, p: string) => segmentFor(rng, method, p, known));
  if (out.endsWith('/*')) {
    const tails = ['', 'x', 'a/b/c', '..', '../..', '%00', '%2e%2e/%2e%2e', '*', '>', hostileSegment(rng), 'x/'.repeat(200)];
    out = out.slice(0, -1) + pick(rng, tails);
  }
  return out;
}

function query(rng: Rng, known: KnownObjects): string {
  if (chance(rng, 0.6)) return '';
  return '?' + pick(rng, [
    () => `path=${hostileSegment(rng)}`, () => `path=/${hostileSegment(rng)}`, () => 'path=',
    () => `limit=${pick(rng, ['0', '-1', '1001', '1.5', 'abc', '', '1e3', '9'.repeat(40), '50'])}`,
    () => `cursor=${hostileSegment(rng)}`, () => `cursor=${known.jobId}`,
    () => 'a=%zz&&&=&b', () => '__proto__[polluted]=1&constructor[prototype][x]=1', () => 'x'.repeat(4000 + Math.floor(rng() * 12_000)),
    () => `since=${pick(rng, ['-1', 'x', '1e400'])}&limit=${pick(rng, ['0', '99999999'])}`,
    () => `clone=${pick(rng, ['-1', 'reduce', 'x', '99999999999', '0'])}&follow=${pick(rng, ['false', 'maybe', '1'])}`,
  ])();
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
/** Methods the parser knows but no route uses, and one it does not know. */
const ODD_METHODS = ['TRACE', 'PROPFIND', 'SEARCH', 'PURGE', 'MKCOL', 'FOO'];

const JSON_SCALARS = ['null', 'true', '0', '-1', '1e400', '-0', '"x"', '""', '[]', '[1,2,3]', '{}', '[null]', '[{}]'];

/** A value of a wrong (or, now and then, right) type for any field. */
function fieldValue(rng: Rng, known: KnownObjects, depth = 0): unknown {
  return pick(rng, [
    () => null, () => true, () => false, () => 0, () => -1, () => 1, () => 2, () => 1.5, () => 1e308, () => -1e308, () => 2 ** 53 + 2, () => 1025, () => 86_400_001,
    () => '', () => 'x', () => 'AA==', () => '!!!not base64', () => 'a'.repeat(10_000 + Math.floor(rng() * 300_000)), () => '\u0000', () => '\ud800',
    () => known.functionName, () => known.serviceName, () => known.dataName, () => known.jobId, () => 'host-1', () => '*', () => '>', () => 'a.b',
    () => 'http://127.0.0.1:1/x', () => 'http://169.254.169.254/latest/meta-data', () => 'ftp://x', () => 'http://user:pass@[::1]:99999/',
    () => 'fork', () => 'cold',
    () => [], () => (depth < 2 ? [fieldValue(rng, known, depth + 1), fieldValue(rng, known, depth + 1)] : [1]),
    () => ({}), () => (depth < 2 ? { x: fieldValue(rng, known, depth + 1) } : { x: 1 }),
    () => Array.from({ length: 2000 }, () => 'AA=='),
  ])();
}

const FIELDS = [
  'function', 'clones', 'init', 'initData', 'boot', 'keepParent', 'input', 'inputs', 'timeoutMs', 'retries', 'reduce', 'callbackUrl',
  'name', 'min', 'max', 'targetConcurrency', 'target', 'downtimeBudgetMs', 'maxRounds', 'verify', 'unknownField', 'constructor', 'toString',
];

/** A JSON object with fields of the routes' bodies, most with wrong values. */
function shapedObject(rng: Rng, known: KnownObjects): string {
  const o: Record<string, unknown> = {};
  const n = Math.floor(rng() * 6);
  for (let k = 0; k < n; k++) o[pick(rng, FIELDS)] = fieldValue(rng, known);
  let text = JSON.stringify(o);
  // JSON.parse makes "__proto__" an own key: the shape a prototype-pollution attempt takes.
  if (chance(rng, 0.2)) text = `{"__proto__":{"polluted":true,"clones":1},${text.slice(1)}`.replace(/,}$/, '}');
  return text;
}

/** Valid bodies of the routes that parse JSON, to mutate: most fuzzed bodies are refused by the first check, these get past it. */
const VALID_BODIES: Record<string, (rng: Rng, known: KnownObjects) => Record<string, unknown>> = {
  'POST /v1/jobs': (_, k) => ({ function: k.functionName, clones: 2, input: 'AA==', timeoutMs: 10_000, retries: 0 }),
  'POST /v1/services': (rng, k) => ({ name: `fz-${Math.floor(rng() * 1e6)}`, function: k.serviceFunction, min: 0, max: 1 }),
  'PATCH /v1/services/:name': () => ({ min: 1, max: 1, targetConcurrency: 8 }),
  'POST /v1/instances/:id/migrate': () => ({ downtimeBudgetMs: 200, maxRounds: 1, verify: false }),
};

/** A valid body of `route` with up to two fields changed to a wrong value, removed, or added (one in five left valid: real work). */
function mutatedBody(rng: Rng, route: GatewayRoute, known: KnownObjects): string {
  const valid = VALID_BODIES[`${route.method} ${route.path}`];
  if (!valid) return shapedObject(rng, known);
  const o = valid(rng, known);
  for (let n = chance(rng, 0.2) ? 0 : 1 + Math.floor(rng() * 2); n > 0; n--) {
    const keys = Object.keys(o);
    const mutation = Math.floor(rng() * 3);
    if (mutation === 0 && keys.length > 0) delete o[pick(rng, keys)];
    else if (mutation === 1) o[pick(rng, FIELDS)] = fieldValue(rng, known);
    else if (keys.length > 0) o[pick(rng, keys)] = fieldValue(rng, known);
  }
  return JSON.stringify(o);
}

function body(rng: Rng, route: GatewayRoute, known: KnownObjects, wasm: Uint8Array): { bytes: Buffer; kind: string } {
  const text = (s: string, kind: string) => ({ bytes: Buffer.from(s), kind });
  return pick(rng, [
    () => text(mutatedBody(rng, route, known), 'mutated valid body'),
    () => text(mutatedBody(rng, route, known), 'mutated valid body'),
    () => ({ bytes: Buffer.alloc(0), kind: 'empty' }),
    () => text(pick(rng, JSON_SCALARS), 'json scalar'),
    () => text(shapedObject(rng, known), 'shaped object'),
    () => text(shapedObject(rng, known), 'shaped object'),
    () => text(shapedObject(rng, known), 'shaped object'),
    () => {
      const depth = pick(rng, [1000, 10_000, 200_000]);
      return chance(rng, 0.5) ? text('['.repeat(depth) + ']'.repeat(depth), `array nested ${depth}`) : text('{"a":'.repeat(depth) + '1' + '}'.repeat(depth), `object nested ${depth}`);
    },
    () => {
      const size = pick(rng, [100_000, 3 * 1024 * 1024, 5 * 1024 * 1024]);
      return text(`{"function":"${'a'.repeat(size)}","clones":1}`, `huge string ${size}`);
    },
    () => ({ bytes: Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]), kind: 'invalid utf-8' }),
    () => ({ bytes: Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"function":"x","clones":1}')]), kind: 'bom' }),
    () => text(pick(rng, ['{', '{"a":}', '[1,', '\u0000', 'nul', '{"a":1}{"b":2}', '1 2', "{'a':1}"]), 'broken json'),
    () => ({ bytes: Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 4096) }, () => Math.floor(rng() * 256))), kind: 'random bytes' }),
    () => ({ bytes: Buffer.from(wasm.subarray(0, Math.floor(rng() * wasm.length))), kind: 'truncated wasm' }),
    () => ({ bytes: Buffer.concat([Buffer.from(wasm.subarray(0, 8)), Buffer.alloc(64, 0xff)]), kind: 'wasm header, garbage sections' }),
  ])();
}

const CONTENT_TYPES = [
  'application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
  'application/wasm', 'application/octet-stream', 'application/json; charset=utf-16', 'a/b;;;=', '', 'text/event-stream',
];

/** Extra header lines (each without its CRLF): hostile values of headers the gateway reads, and huge or many headers. */
function headerLines(rng: Rng, known: KnownObjects): { lines: string[]; kind: string } {
  const lines: string[] = [];
  const kinds: string[] = [];
  const some = (name: string, values: string[]) => {
    if (!chance(rng, 0.25)) return;
    lines.push(`${name}: ${pick(rng, values)}`);
    kinds.push(name);
  };
  some('Authorization', ['Bearer ', 'Bearer x', 'Basic Zm9vOmJhcg==', `Bearer ${'k'.repeat(5000)}`, 'Bearer a b c']);
  some('X-Request-Id', ['../../etc', 'x'.repeat(100), '*', '>', '\xff\xfe', '']);
  some('Idempotency-Key', ['', 'x'.repeat(300), '*', '\xe9\xe9', 'k']);
  some('Last-Event-ID', ['-1', 'abc', '1e400', '9'.repeat(30), '0', '']);
  some('X-Flurry-Route', ['*', '>', 'x'.repeat(8000), '\xff', '']);
  some('Cookie', ['flurry-route=%zz', 'flurry-route=%E0%A4%A', 'flurry-route=', `flurry-route=${'%41'.repeat(2000)}`, ';;;=;', 'a=b; flurry-route=x; flurry-route=y']);
  some('Accept', ['*/*', 'text/event-stream', '\x01']);
  some('Range', ['bytes=0-1', 'bytes=-1', 'x']);
  if (chance(rng, 0.04)) {
    lines.push(`X-Huge: ${'h'.repeat(pick(rng, [8 * 1024, 15 * 1024, 20 * 1024, 200 * 1024]))}`);
    kinds.push('huge header');
  }
  if (chance(rng, 0.04)) {
    const n = pick(rng, [100, 1000, 3000]);
    for (let k = 0; k < n; k++) lines.push(`X-Many-${k}: ${k}`);
    kinds.push(`${n} headers`);
  }
  if (chance(rng, 0.02)) {
    lines.push(`X-Flurry-Host: forged`, `Transfer-Encoding: gzip`);
    kinds.push('odd framing');
  }
  return { lines, kind: kinds.join('+') };
}

/** `count` requests to `route`, made from `rng`. */
export function fuzzRequests(rng: Rng, route: GatewayRoute, count: number, known: KnownObjects, wasm: Uint8Array): FuzzRequest[] {
  const out: FuzzRequest[] = [];
  for (let n = 0; n < count; n++) {
    let method = route.method === 'ALL' ? pick(rng, METHODS) : route.method;
    if (chance(rng, 0.08)) method = pick(rng, [...METHODS, ...ODD_METHODS]);
    const target = fillPath(rng, method, route.path, known) + query(rng, known);
    const b = method === 'GET' || method === 'HEAD' ? (chance(rng, 0.1) ? body(rng, route, known, wasm) : { bytes: Buffer.alloc(0), kind: 'none' }) : body(rng, route, known, wasm);
    const h = headerLines(rng, known);
    const contentType = pick(rng, CONTENT_TYPES);
    const chunked = b.bytes.length > 0 && chance(rng, 0.1);
    const head = [
      `${method} ${target} HTTP/1.1`,
      'Host: 127.0.0.1',
      ...(contentType ? [`Content-Type: ${contentType}`] : []),
      ...(b.bytes.length > 0 ? [chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${b.bytes.length}`] : []),
      ...h.lines,
    ];
    const payload = chunked ? Buffer.concat([Buffer.from(`${b.bytes.length.toString(16)}\r\n`), b.bytes, Buffer.from('\r\n0\r\n\r\n')]) : b.bytes;
    const shownTarget = target.length > 120 ? `${target.slice(0, 120)}…(${target.length} chars)` : target;
    out.push({
      route: `${route.method} ${route.path}`,
      label: `${method} ${JSON.stringify(shownTarget)} [${route.method} ${route.path}] body=${b.kind}${chunked ? ' chunked' : ''} type=${JSON.stringify(contentType)}${h.kind ? ` headers=${h.kind}` : ''}`,
      method,
      bytes: Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), payload]),
    });
  }
  return out;
}
