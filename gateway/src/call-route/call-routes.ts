/**
 * The call routes: which requests they are, and how the API's document lists
 * them. They are served in front of the Hono app by call-handler.ts, so they
 * are not among the app's own routes (`app.routes`); `CALL_ROUTES` lists them
 * for whoever walks every route (the API document's test, the HTTP fuzz).
 *
 *   ANY  /fn/:name          a function's guest sees path /
 *   ANY  /fn/:name/*        a function's guest sees the rest of the path
 *   POST /v1/functions/:name/invoke?path=/p   a function's guest sees a POST to /p
 *   ANY  /svc/:name         an instance of the service sees path /
 *   ANY  /svc/:name/*       an instance of the service sees the rest of the path
 *
 * The name and the path are Hono's: the name is the routed path's segment
 * decoded by decodeURIComponent, the guest's path is the routed path after
 * `/fn/<name>` or `/svc/<name>` (request-target.ts).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { getQueryParams, tryDecodeURIComponent } from 'hono/utils/url';
import { FlurryError } from '@flurry/core';
import { declarePassthrough, describeIssue, pathName, type Env } from '../api/api-app.js';
import type { RequestTarget } from './request-target.js';

/** The call routes as Hono would write them. */
export const CALL_ROUTES = [
  { method: 'POST', path: '/v1/functions/:name/invoke' },
  { method: 'ALL', path: '/fn/:name' },
  { method: 'ALL', path: '/fn/:name/*' },
  { method: 'ALL', path: '/svc/:name' },
  { method: 'ALL', path: '/svc/:name/*' },
] as const;

/** A request for a call route: a function's or a service's name and the path the guest sees. */
export interface CallRoute {
  to: 'function' | 'service';
  name: string;
  /** The request path the guest sees (`/` at least); absent for the invoke route, whose query says it (`invokePath`). */
  path?: string;
}

const FN_PREFIX = '/fn/';
const SVC_PREFIX = '/svc/';
const INVOKE = /^\/v1\/functions\/([^/]+)\/invoke$/;

// Not strict: the rest of the query is the guest's.
const InvokeQuery = z.object({ path: z.string().optional().openapi({ description: 'The request path the guest sees (default /); the whole query string is passed on too' }) });

const invokeRoute = createRoute({
  method: 'post', path: '/v1/functions/{name}/invoke', tags: ['Calls'], summary: 'Call a function with a POST of raw bytes',
  description: 'The body is passed to the function\'s handle() as a POST to `path`; the answer is the guest\'s, any status and content '
    + '(a refusal or failure of the platform has the error shape and x-flurry-error). /fn/{name} passes any method and path.',
  request: {
    params: z.strictObject({ name: pathName('The function\'s name') }),
    query: InvokeQuery,
    body: { description: 'The request body (up to FLURRY_MAX_BODY_BYTES)', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
  },
  responses: {
    default: { description: 'The guest\'s answer, any status and content', content: { '*/*': { schema: z.string().openapi({ format: 'binary' }) } } },
  },
});

/** Lists the call routes in the app's API document (they have no handler in the app). */
export function declareCallRoutes(app: OpenAPIHono<Env>): void {
  app.openAPIRegistry.registerPath(invokeRoute);
  declarePassthrough(app, '/fn', 'Calls', 'function');
}

/**
 * The call route a request with `method` and the routed path `routed` is for, or `undefined` for none (the Hono
 * app's then). `services`: whether this gateway serves services (else `/svc` is the app's too: no route).
 */
export function matchCallRoute(method: string, routed: string, services: boolean): CallRoute | undefined {
  if (routed.startsWith(FN_PREFIX)) return passthrough('function', FN_PREFIX, routed);
  if (routed.startsWith(SVC_PREFIX)) return services ? passthrough('service', SVC_PREFIX, routed) : undefined;
  if (method !== 'POST') return undefined;
  const invoke = INVOKE.exec(routed);
  if (!invoke) return undefined;
  return { to: 'function', name: tryDecodeURIComponent(invoke[1]!) };
}

/** `ANY <prefix>:name[/*]`: the name and the path as Hono's handlers had them (the routed path after the prefix and the decoded name). */
function passthrough(to: CallRoute['to'], prefix: string, routed: string): CallRoute | undefined {
  const end = routed.indexOf('/', prefix.length);
  const segment = end < 0 ? routed.slice(prefix.length) : routed.slice(prefix.length, end);
  if (segment === '') return undefined;
  const name = tryDecodeURIComponent(segment);
  return { to, name, path: end < 0 ? '/' : routed.slice(prefix.length + name.length) || '/' };
}

/**
 * The path the invoke route's guest sees: its `path` query parameter (default `/`), checked by the route's schema as
 * Hono's query validator reads it (`bad_request` when it is not one string).
 */
export function invokePath(target: RequestTarget): string {
  if (target.query === '') return '/';
  const params = getQueryParams(`http://h${target.pathAndQuery}`) as Record<string, string[]>;
  const query = Object.fromEntries(Object.entries(params).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v])));
  const checked = InvokeQuery.safeParse(query);
  if (!checked.success) throw new FlurryError('bad_request', describeIssue(checked.error.issues[0], 'query'));
  return checked.data.path || '/';
}
