/** `flurry.functions`: deploy, list, read, delete and invoke functions, and set their limits. */
import { guestResponseOrThrow, type InvokeResponse } from './invoke-response.js';
import { readLogs, type GuestLogLine, type LogOptions } from './logs.js';
import type { QueryInit, Transport } from './transport.js';
import type { FunctionLimits, FunctionRecord } from './types.js';

/**
 * An invocation's body: bytes as they are, a string as UTF-8 text, any other object as JSON.
 *
 * @example
 * await flurry.functions.invoke('resize', imageBytes);     // application/octet-stream
 * await flurry.functions.invoke('greet', { name: 'Ada' }); // application/json
 */
export type InvokeBody = Uint8Array | string | object;

/**
 * How to call the guest; the gateway hands all of it to the guest's `handle()`.
 *
 * @example
 * await flurry.functions.invoke('shop', undefined, { method: 'DELETE', path: '/cart/3', headers: { 'x-user': 'ada' } });
 */
export interface InvokeOptions {
  /** Default `POST` when there is a body, else `GET` (as curl does). */
  method?: string;
  /** Path below the function, default `/`; may carry a `?query`. */
  path?: string;
  query?: QueryInit;
  /** Set `content-type` here to override the one chosen from the body. */
  headers?: HeadersInit;
  /**
   * Whether the call may be sent again after a platform 429 or 503 or a lost connection (see the
   * client's `retries`). Default: for GET, HEAD, PUT, DELETE and OPTIONS only; `true` for a guest
   * that takes the same POST twice safely; `false` never.
   */
  retry?: boolean;
}

/**
 * The functions API. Reach it as `flurry.functions`.
 *
 * @example
 * const fn = await flurry.functions.deploy('hello', await readFile('hello.wasm'));
 * const res = await flurry.functions.invoke('hello', 'world');
 */
export class FunctionsApi {
  constructor(private readonly transport: Transport) {}

  /** Uploads a module under `name`, creating the function or replacing its module. */
  async deploy(name: string, module: Uint8Array): Promise<FunctionRecord> {
    const answer = await this.transport.json<{ function: FunctionRecord }>({
      method: 'PUT',
      path: functionPath(name),
      headers: { 'content-type': 'application/wasm' },
      body: module,
    });
    return answer.function;
  }

  /**
   * Replaces the function's limits (`{}`: the fleet's defaults again); they stay across redeploys.
   * A limit above the fleet's cap is refused (FlurryApiError, bad_request, naming the cap).
   *
   * @example
   * await flurry.functions.setLimits('resize', { timeoutMs: 2000 });
   */
  async setLimits(name: string, limits: FunctionLimits): Promise<FunctionRecord> {
    const answer = await this.transport.json<{ function: FunctionRecord }>({
      method: 'PATCH',
      path: functionPath(name),
      headers: { 'content-type': 'application/json' },
      body: new TextEncoder().encode(JSON.stringify({ limits })),
    });
    return answer.function;
  }

  async list(): Promise<FunctionRecord[]> {
    const answer = await this.transport.json<{ functions: FunctionRecord[] }>({ method: 'GET', path: '/v1/functions' });
    return answer.functions;
  }

  async get(name: string): Promise<FunctionRecord> {
    const answer = await this.transport.json<{ function: FunctionRecord }>({ method: 'GET', path: functionPath(name) });
    return answer.function;
  }

  async delete(name: string): Promise<void> {
    await this.transport.json<{ deleted: string }>({ method: 'DELETE', path: functionPath(name) });
  }

  /**
   * What the function's calls logged: the last lines kept, or with `follow: true` those and
   * each new line as it is stored.
   *
   * @example
   * for await (const line of flurry.functions.logs('resize', { follow: true })) console.log(line.level, line.message);
   */
  logs(name: string, options: LogOptions & { follow: true }): AsyncGenerator<GuestLogLine>;
  logs(name: string, options?: LogOptions & { follow?: false }): Promise<GuestLogLine[]>;
  logs(name: string, options: LogOptions & { follow?: boolean } = {}): Promise<GuestLogLine[]> | AsyncGenerator<GuestLogLine> {
    return readLogs(this.transport, `${functionPath(name)}/logs`, options);
  }

  /**
   * Calls the function over HTTP. Whatever status the guest answers with comes back as an
   * InvokeResponse; only platform errors (no capacity, trap, timeout, ...) throw FlurryApiError.
   */
  async invoke(name: string, body?: InvokeBody, options: InvokeOptions = {}): Promise<InvokeResponse> {
    const encoded = encodeBody(body);
    const headers = new Headers(options.headers);
    if (encoded !== undefined && !headers.has('content-type')) headers.set('content-type', encoded.contentType);
    const path = options.path ?? '/';
    const response = await this.transport.send({
      method: (options.method ?? (encoded === undefined ? 'GET' : 'POST')).toUpperCase(),
      path: `/fn/${encodeURIComponent(name)}${path.startsWith('/') ? path : `/${path}`}`,
      query: options.query,
      headers,
      body: encoded?.bytes,
      retry: options.retry,
    });
    return guestResponseOrThrow(response);
  }
}

function functionPath(name: string): string {
  return `/v1/functions/${encodeURIComponent(name)}`;
}

function encodeBody(body: InvokeBody | undefined): { bytes: Uint8Array; contentType: string } | undefined {
  if (body === undefined) return undefined;
  if (body instanceof Uint8Array) return { bytes: body, contentType: 'application/octet-stream' };
  if (typeof body === 'string') return { bytes: new TextEncoder().encode(body), contentType: 'text/plain; charset=utf-8' };
  return { bytes: new TextEncoder().encode(JSON.stringify(body)), contentType: 'application/json' };
}
