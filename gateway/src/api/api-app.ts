/**
 * How a route module declares its part of the HTTP API: once, as zod schemas
 * (params, query, body, each response), from which the app both validates
 * requests and writes /openapi.json (api-docs.ts).
 *
 *   const router = apiRouter();
 *   router.openapi(createRoute({ method: 'get', path: '/v1/things/{name}', tags: ['Things'],
 *     request: { params: NameParam }, responses: { 200: jsonResponse(Thing, 'The thing') } }),
 *     (c) => c.json(thing(c.req.valid('param').name), 200));
 *   app.route('/', router); // in app.ts, after the middleware the routes need
 *
 * A request that fails its schema gets the API's one error shape (400
 * bad_request naming the field), through `refuseInvalid`, the routers'
 * default hook. Objects are strict: an unknown field is refused.
 */
import { OpenAPIHono, z, type Hook } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { FlurryError, type Logger } from '@flurry/core';
import type { CallerVariables } from '../auth/roles.js';
import type { TraceVariables } from '../metrics/trace-context.js';
import { ERROR_CODES } from '../http-errors.js';
import { readBody } from '../request-body.js';

/**
 * What every route may read from the context: the request id, the logger, the caller (auth/roles.ts) and the request's
 * trace (metrics/trace-context.ts). Read them with `c.get('tenant')`: the context's `var` getter copies every
 * variable into a new object on each read, several times a call (api/context-variables.test.ts holds this).
 */
export type Env = { Variables: { requestId: string; log: Logger } & CallerVariables & TraceVariables };

/** RFC 8631: where the description of this API is, on the gateway's own answers (clients, and the suites' response check, find it so). */
export const API_DESCRIPTION_LINK = '</openapi.json>; rel="service-desc"';

/** The name of the security scheme every route but the health checks and the docs needs. */
export const API_KEY = 'apiKey';

/** A router to declare routes on; mount it with `app.route('/', router)`. */
export function apiRouter(): OpenAPIHono<Env> {
  return new OpenAPIHono<Env>({ defaultHook: refuseInvalid });
}

/** The default hook: a request that fails its schema is refused 400, naming the first bad field. */
export const refuseInvalid: Hook<unknown, Env, string, void> = (result) => {
  if (!result.success) throw new FlurryError('bad_request', describeIssue(result.error.issues[0], result.target));
};

/** One zod issue in the API's words: `"clones" must be ...`, `unknown field "x"`. */
export function describeIssue(issue: z.core.$ZodIssue | undefined, target: string): string {
  if (!issue) return `invalid ${target}`;
  const where = fieldName(issue.path);
  // zod's own words for it start "Unrecognized key"; a schema may say more (as the service change does).
  if (issue.code === 'unrecognized_keys' && issue.message.startsWith('Unrecognized key')) {
    const keys = issue.keys.map((k) => `"${where ? `${where}.` : ''}${k}"`).join(', ');
    return `unknown ${target === 'query' ? 'query parameter' : 'field'} ${keys}`;
  }
  if (!where) return target === 'json' && issue.code === 'invalid_type' ? 'the body must be a JSON object' : issue.message;
  return `${target === 'header' ? 'header ' : target === 'query' ? 'query parameter ' : ''}"${where}" ${issue.message}`;
}

/** `inputs[1]`, `memory.initialPages`. */
function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '');
}

/** Every error code (http-errors.ts maps each to its status), as one named schema the SDK's ErrorCode comes from. */
export const ErrorCode = z.enum(ERROR_CODES).openapi('ErrorCode', { description: 'What went wrong, for programs (also in the x-flurry-error header)' });

/**
 * The body of every refusal, whatever the route: also in the `x-flurry-error` header.
 */
export const ErrorBody = z.strictObject({
  error: z.strictObject({
    code: ErrorCode,
    message: z.string().openapi({ description: 'What went wrong, for people' }),
  }),
}).openapi('Error', { description: 'A refusal or failure of the platform (not a guest\'s own answer)' });

/** A JSON response of `schema`. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } } as const;
}

/** Every refusal (any status not declared otherwise) has the error shape. */
export const errorResponses = {
  default: jsonResponse(ErrorBody, 'A refusal or failure: 4xx or 5xx with the error shape; `retry-after` on 429 and 503'),
} as const;

/** A path parameter's schema: a non-empty string. */
export const pathName = (description: string) => z.string().min(1).openapi({ description });

/**
 * Reads a JSON body under `limit` bytes (413 beyond it, as readBody does
 * for every route) for the route's schema to check. The body is read as JSON
 * whatever its content-type says, as the API always has: `curl -d` labels it
 * x-www-form-urlencoded and `fetch` of a string text/plain. An `optional`
 * body may be empty (then it is `{}`). The bytes stay readable
 * (`c.req.arrayBuffer()`), for an Idempotency-Key's hash.
 */
export function jsonBody(limit: number, opts: { optional?: boolean } = {}): MiddlewareHandler<Env> {
  return async (c, next) => {
    const bytes = await readBody(c, limit);
    const empty = bytes.length === 0 && opts.optional === true;
    // The validator after this reads only what is labelled JSON (and refuses anything else 415): label it so.
    c.req.raw.headers.set('content-type', 'application/json');
    // Hono's body cache, which the validator parses from (once). Its type names Body's methods; it holds their promises.
    Object.assign(c.req.bodyCache, {
      arrayBuffer: Promise.resolve(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)),
      text: Promise.resolve(empty ? '{}' : new TextDecoder().decode(bytes)),
    });
    await next();
  };
}

/** The methods the document lists for a passthrough (it forwards any). */
const PASSTHROUGH_METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/**
 * Declares `{prefix}/{name}` and `{prefix}/{name}/{path}`, the routes that
 * pass any request on to a guest (`/fn`, `/svc`): OpenAPI has no "any method"
 * and no path parameter with slashes, so the document lists the common
 * methods and `path` as one parameter that may hold slashes. The answer is
 * the guest's, any status and content; the platform's refusals have the
 * error shape and `x-flurry-error`. The routes themselves are `router.all`.
 */
export function declarePassthrough(router: OpenAPIHono<Env>, prefix: string, tag: string, what: string): void {
  const name = z.string().min(1).openapi({ description: `The ${what}'s name` });
  const path = z.string().openapi({ description: 'The rest of the path, slashes included, passed to the guest as its request path' });
  for (const withPath of [false, true]) {
    for (const method of PASSTHROUGH_METHODS) {
      router.openAPIRegistry.registerPath({
        method, path: `${prefix}/{name}${withPath ? '/{path}' : ''}`, tags: [tag],
        summary: `Call a ${what} (any method)`,
        description: `Any method, path, query, headers and body are passed to the ${what}'s guest, and its answer back, with x-flurry-request-id, x-flurry-host and x-flurry-duration-ms set.`,
        request: {
          params: withPath ? z.strictObject({ name, path }) : z.strictObject({ name }),
          body: { content: { '*/*': { schema: z.string().openapi({ format: 'binary' }) } } },
        },
        responses: {
          default: {
            description: `The ${what}'s answer, any status and content; a refusal or failure of the platform has the error shape and x-flurry-error`,
            content: { '*/*': { schema: z.string().openapi({ format: 'binary' }) } },
          },
        },
      });
    }
  }
}
