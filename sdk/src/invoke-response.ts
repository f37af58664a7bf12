/**
 * A guest's answer to an invocation, and the rule that tells it from a platform error.
 *
 * The rule: an answer is the guest's when it carries `x-flurry-host` (the host that ran
 * the guest) and does not carry `x-flurry-error` (which the gateway puts on every platform
 * error). Any other answer that is not 2xx is a platform error, also when a proxy in front
 * of the gateway sent it; a 2xx without `x-flurry-host` breaks the contract and is one too.
 * So a guest's own 404 or 500, even with a JSON `{ "error": ... }` body, is a response,
 * not an exception. The gateway must drop `x-flurry-*` headers a guest sets itself.
 */
import { FlurryApiError } from './errors.js';
import { GatewayHeaders } from './gateway-headers.js';
import { apiErrorFrom, type HttpResponse } from './transport.js';

/**
 * What a guest answered: its own status, headers and body, plus where and how fast it ran.
 *
 * @example
 * const res = await flurry.functions.invoke('hello', { name: 'Ada' });
 * if (res.ok) console.log(res.json(), 'from', res.hostId, 'in', res.durationMs, 'ms');
 */
export class InvokeResponse {
  /** The guest's HTTP status. */
  readonly status: number;
  /** The guest's headers, plus the gateway's `x-flurry-*` headers. */
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** The gateway's id for this call, for its logs. */
  readonly requestId: string;
  /** The host that ran the guest. */
  readonly hostId: string;
  /** How long the guest ran, as the gateway measured it; NaN if the gateway did not say. */
  readonly durationMs: number;

  /** Built by `functions.invoke`; `response` must be a guest response (see the module comment). */
  constructor(response: HttpResponse) {
    this.status = response.status;
    this.headers = response.headers;
    this.body = response.body;
    this.requestId = response.headers.get(GatewayHeaders.requestId) ?? '';
    this.hostId = response.headers.get(GatewayHeaders.host) ?? '';
    this.durationMs = Number(response.headers.get(GatewayHeaders.durationMs) ?? NaN);
  }

  /** True for a 2xx status. */
  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  /** The body decoded as UTF-8. */
  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON; throws SyntaxError when it is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}

/** Returns the guest's response, or throws the platform error the answer is. */
export function guestResponseOrThrow(response: HttpResponse): InvokeResponse {
  const isPlatformError = response.headers.has(GatewayHeaders.error);
  const fromGuest = response.headers.has(GatewayHeaders.host);
  if (isPlatformError || (!fromGuest && (response.status < 200 || response.status > 299))) {
    throw apiErrorFrom(response);
  }
  if (!fromGuest) {
    throw new FlurryApiError({
      status: response.status,
      code: 'internal',
      message: `gateway answered an invocation without ${GatewayHeaders.host}`,
      requestId: response.headers.get(GatewayHeaders.requestId) ?? undefined,
    });
  }
  return new InvokeResponse(response);
}
