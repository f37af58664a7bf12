/** The Flurry client: one connection setting, one namespace per resource (`functions`, `hosts`, `jobs`, `data`, `services`). */
import { DataApi } from './data.js';
import { FunctionsApi } from './functions.js';
import { HostsApi } from './hosts.js';
import { JobsApi } from './jobs.js';
import { RetryPolicy, type RetryOptions } from './retry.js';
import { ServicesApi } from './services.js';
import { Transport } from './transport.js';

/**
 * How to reach the gateway.
 *
 * @example
 * const options: FlurryOptions = { url: 'https://flurry.example.com', apiKey: 'k', timeoutMs: 10_000, retries: { count: 8, withinMs: 60_000 } };
 */
export interface FlurryOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:8080`; a path prefix is kept. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** A fetch implementation to use instead of the global one (tests, other runtimes, retries). */
  fetch?: typeof globalThis.fetch;
  /** Per request, including reading the answer; default 60 000, 0 for none. */
  timeoutMs?: number;
  /**
   * Retries of requests that cannot do anything twice (GET, HEAD, PUT, DELETE, OPTIONS, and
   * requests with an `Idempotency-Key`, which `jobs.submit` always sends) after a 429, a 503
   * or a lost connection, and reconnects of `JobHandle.events()`: a number of retries, or
   * RetryOptions. Default 4 retries within 30 s; 0 turns them off.
   */
  retries?: number | RetryOptions;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * A client of one Flurry gateway.
 *
 * @example
 * const flurry = new Flurry({ url: 'http://127.0.0.1:8080', apiKey: process.env.FLURRY_API_KEY });
 * await flurry.functions.deploy('hello', await readFile('hello.wasm'));
 * console.log((await flurry.functions.invoke('hello', { name: 'Ada' })).text());
 */
export class Flurry {
  readonly functions: FunctionsApi;
  readonly hosts: HostsApi;
  readonly jobs: JobsApi;
  readonly data: DataApi;
  readonly services: ServicesApi;

  constructor(options: FlurryOptions) {
    const transport = new Transport({ ...options, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, retries: new RetryPolicy(options.retries) });
    this.functions = new FunctionsApi(transport);
    this.hosts = new HostsApi(transport);
    this.jobs = new JobsApi(transport);
    this.data = new DataApi(transport);
    this.services = new ServicesApi(transport);
  }
}
