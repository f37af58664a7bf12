/**
 * The one place that speaks HTTP to the gateway: URLs, auth, timeouts, retries, and turning
 * failures into the SDK's errors.
 */
import { FlurryApiError, FlurryConnectionError, FlurryTimeoutError } from './errors.js';
import { GatewayHeaders } from './gateway-headers.js';
import { isTransientNetworkError, sleep, type RetryPolicy } from './retry.js';
import type { ErrorCode } from './types.js';

export interface TransportOptions {
  url: string;
  apiKey?: string;
  fetch?: typeof globalThis.fetch;
  /** 0 disables the timeout. */
  timeoutMs: number;
  retries: RetryPolicy;
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
  /**
   * Whether `send` may send the request again after a 429, a 503 or a lost connection. By
   * default only when that cannot do anything twice: GET, HEAD, PUT, DELETE, OPTIONS, and
   * any request with an `Idempotency-Key`.
   */
  retry?: boolean;
}

/** A complete answer, body already read. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** A streaming answer from `Transport.open`. */
export interface OpenStream {
  response: Response;
  /** Drops the connection (idempotent). */
  close(): void;
}

export class Transport {
  private readonly base: URL;
  private readonly apiKey: string | undefined;
  private readonly fetch: typeof globalThis.fetch;
  private readonly timeoutMs: number;
  /** How requests are retried; streams (JobHandle.events) follow it too. */
  readonly retries: RetryPolicy;

  constructor(options: TransportOptions) {
    this.base = new URL(options.url);
    this.apiKey = options.apiKey || undefined;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs;
    this.retries = options.retries;
  }

  /**
   * Sends a request and reads the whole answer; any HTTP status resolves, only a missing answer
   * throws. A request that may be retried (`HttpRequest.retry`) is sent again, with back-off,
   * after a platform 429 or 503 (waiting its `Retry-After`) or a transient network failure,
   * within the client's retry settings; the last answer or failure is what comes back. A
   * timeout is not retried: `timeoutMs` is the caller's bound.
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    const retryable = request.retry ?? (IDEMPOTENT_METHODS.has(request.method.toUpperCase()) || new Headers(request.headers).has('idempotency-key'));
    const startedAt = Date.now();
    for (let retry = 1; ; retry++) {
      let wait: number | undefined;
      try {
        const response = await this.sendOnce(request);
        if (!retryable || !isBusyAnswer(response)) return response;
        wait = this.retries.delayBefore(retry, startedAt, parseRetryAfter(response.headers.get('retry-after')));
        if (wait === undefined) return response;
      } catch (err) {
        const transient = err instanceof FlurryConnectionError && !(err instanceof FlurryTimeoutError) && isTransientNetworkError(err.cause);
        if (!retryable || !transient) throw err;
        wait = this.retries.delayBefore(retry, startedAt);
        if (wait === undefined) throw err;
      }
      await sleep(wait);
    }
  }

  private async sendOnce(request: HttpRequest): Promise<HttpResponse> {
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
    return (await this.jsonAnswer<T>(request)).value;
  }

  /** As `json`, keeping the status and headers (a 200 and a 202 can mean different things). */
  async jsonAnswer<T>(request: HttpRequest): Promise<{ status: number; headers: Headers; value: T }> {
    const response = await this.send(request);
    if (response.status < 200 || response.status > 299) throw apiErrorFrom(response);
    return { status: response.status, headers: response.headers, value: parseJsonBody<T>(response, request) };
  }

  /**
   * Sends a request and hands back the answer with its body unread, for streams (Server-Sent
   * Events). The timeout covers only the wait for the answer's headers: a stream may last as
   * long as the job. A non-2xx answer is read and thrown as FlurryApiError. `close()` drops
   * the connection; so does aborting `signal`.
   */
  async open(request: HttpRequest, signal?: AbortSignal): Promise<OpenStream> {
    const url = this.urlFor(request.path, request.query);
    const headers = new Headers(request.headers);
    if (this.apiKey !== undefined) headers.set('authorization', `Bearer ${this.apiKey}`);
    const connection = new AbortController();
    const abort = () => connection.abort(signal?.reason);
    const close = () => {
      signal?.removeEventListener('abort', abort);
      connection.abort();
    };
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    let timedOut = false;
    const timer = this.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          connection.abort();
        }, this.timeoutMs)
      : undefined;
    try {
      const response = await this.fetch(url, { method: request.method, headers, body: request.body as BodyInit | undefined, signal: connection.signal });
      if (response.status < 200 || response.status > 299) {
        const body = new Uint8Array(await response.arrayBuffer());
        throw apiErrorFrom({ status: response.status, headers: response.headers, body });
      }
      return { response, close };
    } catch (err) {
      close();
      if (err instanceof FlurryApiError) throw err;
      if (signal?.aborted) throw signal.reason ?? err;
      if (timedOut) throw this.connectionError(Object.assign(new Error('timed out'), { name: 'TimeoutError' }), request.method, url);
      throw this.connectionError(err, request.method, url);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Wraps a failure while reading a stream opened with `open` as a FlurryConnectionError. */
  streamError(err: unknown, request: HttpRequest): FlurryConnectionError {
    return this.connectionError(err, request.method, this.urlFor(request.path, request.query));
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

/** Methods that mean the same when sent twice (RFC 9110 9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A 429 or 503 of the platform (or a proxy in front of it); a guest's own answer is never retried. */
function isBusyAnswer(response: HttpResponse): boolean {
  if (response.status !== 429 && response.status !== 503) return false;
  return !(response.headers.has(GatewayHeaders.host) && !response.headers.has(GatewayHeaders.error));
}

/** Parses a 2xx answer's JSON body; a body that is not JSON is the gateway's fault (`internal`). */
export function parseJsonBody<T>(response: HttpResponse, request: HttpRequest): T {
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
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 409: return 'conflict';
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
