/** The one place that speaks HTTP to the gateway: URLs, auth, timeouts, and turning failures into the SDK's errors. */
import { FlurryApiError, FlurryConnectionError, FlurryTimeoutError } from './errors.js';
import { GatewayHeaders } from './gateway-headers.js';
import type { ErrorCode } from './types.js';

export interface TransportOptions {
  url: string;
  apiKey?: string;
  fetch?: typeof globalThis.fetch;
  /** 0 disables the timeout. */
  timeoutMs: number;
}

/**
 * Query parameters, in any of the shapes `URLSearchParams` accepts.
 *
 * @example
 * await flurry.functions.invoke('search', undefined, { path: '/find', query: { q: 'wasm', limit: '10' } });
 */
export type QueryInit = string | URLSearchParams | Record<string, string>;

export interface HttpRequest {
  method: string;
  /** Path below the gateway's base URL, starting with `/`; may carry its own `?query`. */
  path: string;
  query?: QueryInit;
  headers?: HeadersInit;
  body?: Uint8Array;
}

/** A complete answer, body already read. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

export class Transport {
  private readonly base: URL;
  private readonly apiKey: string | undefined;
  private readonly fetch: typeof globalThis.fetch;
  private readonly timeoutMs: number;

  constructor(options: TransportOptions) {
    this.base = new URL(options.url);
    this.apiKey = options.apiKey || undefined;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs;
  }

  /** Sends a request and reads the whole answer; any HTTP status resolves, only a missing answer throws. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    const url = this.urlFor(request.path, request.query);
    const headers = new Headers(request.headers);
    if (this.apiKey !== undefined) headers.set('authorization', `Bearer ${this.apiKey}`);
    // The timeout covers reading the body too: a guest can stream slowly.
    const signal = this.timeoutMs > 0 ? AbortSignal.timeout(this.timeoutMs) : undefined;
    try {
      const response = await this.fetch(url, {
        method: request.method,
        headers,
        body: request.body as BodyInit | undefined,
        signal,
      });
      const body = new Uint8Array(await response.arrayBuffer());
      return { status: response.status, headers: response.headers, body };
    } catch (err) {
      throw this.connectionError(err, request.method, url);
    }
  }

  /** Sends a request and parses a JSON answer; a non-2xx answer throws FlurryApiError. */
  async json<T>(request: HttpRequest): Promise<T> {
    const response = await this.send(request);
    if (response.status < 200 || response.status > 299) throw apiErrorFrom(response);
    try {
      return JSON.parse(new TextDecoder().decode(response.body)) as T;
    } catch (err) {
      throw new FlurryApiError({
        status: response.status,
        code: 'internal',
        message: `gateway answered ${request.method} ${request.path} with a body that is not JSON`,
        requestId: response.headers.get(GatewayHeaders.requestId) ?? undefined,
        cause: err,
      });
    }
  }

  private urlFor(path: string, query: QueryInit | undefined): URL {
    // Keep any path prefix of the base URL (a gateway behind a proxy at /flurry/).
    const prefix = this.base.pathname.replace(/\/+$/, '');
    const url = new URL(`${this.base.origin}${prefix}${path}`);
    for (const [key, value] of new URLSearchParams(query)) url.searchParams.append(key, value);
    return url;
  }

  private connectionError(err: unknown, method: string, url: URL): FlurryConnectionError {
    const target = `${method} ${url.origin}${url.pathname}`;
    if (err instanceof Error && err.name === 'TimeoutError') {
      return new FlurryTimeoutError(`${target}: no answer within ${this.timeoutMs} ms`, { cause: err });
    }
    return new FlurryConnectionError(`${target}: ${describeNetworkFailure(err)}`, { cause: err });
  }
}

/** Builds the FlurryApiError for a platform error answer, whatever its body looks like. */
export function apiErrorFrom(response: HttpResponse): FlurryApiError {
  const envelope = parseErrorEnvelope(response.body);
  return new FlurryApiError({
    status: response.status,
    code: envelope?.code ?? response.headers.get(GatewayHeaders.error) ?? codeForStatus(response.status),
    message: envelope?.message ?? `gateway answered HTTP ${response.status} without an error body`,
    requestId: response.headers.get(GatewayHeaders.requestId) ?? undefined,
    retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')),
  });
}

function parseErrorEnvelope(body: Uint8Array): { code: string; message: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
    const error = (parsed as { error?: unknown } | null)?.error as { code?: unknown; message?: unknown } | undefined;
    if (typeof error?.code === 'string' && typeof error.message === 'string') {
      return { code: error.code, message: error.message };
    }
  } catch {
    // Not JSON: a proxy's HTML page, say. The status still tells what happened.
  }
  return undefined;
}

/** For answers that carry no code (from a proxy in front of the gateway, for instance). */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'bad_request';
    case 401: case 403: return 'unauthorized';
    case 404: return 'not_found';
    case 413: return 'payload_too_large';
    case 502: case 503: return 'unavailable';
    case 504: return 'timeout';
    default: return 'internal';
  }
}

/** `Retry-After` is either delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Node's fetch throws `TypeError('fetch failed')` and hides the useful part (ECONNREFUSED ...) in `cause`. */
function describeNetworkFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const inner = err.cause instanceof Error ? err.cause.message : undefined;
  return inner ?? err.message;
}
