/**
 * One callback delivery: a POST to an address that passed the check
 * (callback-address.ts), and to no other. node:http and node:https are used
 * directly because they let the connection be pinned (`lookup` answers with
 * the checked address, while TLS still verifies the certificate against the
 * URL's host name), never follow redirects, ignore proxy variables and pool
 * nothing across deliveries (`agent: false`).
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CallbackTarget } from './callback-address.js';

/** How one delivery ended: `status` when the receiver answered, `error` unless it answered 2xx. */
export interface PostOutcome {
  ok: boolean;
  status?: number;
  error?: string;
}

/**
 * POSTs `body` (JSON) to the target's first address, within `timeoutMs` from
 * connecting to the answer's status line. Never throws: a refusal, a
 * timeout, a 3xx (not followed) and any non-2xx answer are failed outcomes.
 *
 * @example
 * const r = await postCallback(target, JSON.stringify(job), { 'flurry-signature': sig }, 10_000);
 * if (!r.ok) log.warn({ status: r.status, err: r.error }, 'callback failed');
 */
export function postCallback(target: CallbackTarget, body: string, headers: Record<string, string>, timeoutMs: number): Promise<PostOutcome> {
  const { url, addresses } = target;
  const pinned = addresses[0];
  const lookup: LookupFunction = (_hostname, options, done) => {
    if (options.all) (done as (err: null, all: { address: string; family: number }[]) => void)(null, [pinned]);
    else done(null, pinned.address, pinned.family);
  };
  const options: RequestOptions = {
    method: 'POST',
    protocol: url.protocol,
    hostname: target.hostname,
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    lookup,
    agent: false,
    signal: AbortSignal.timeout(timeoutMs),
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'flurry-callbacks/1',
      ...headers,
    },
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PostOutcome>((resolve) => {
    const req = send(options, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // Only the status matters; the answer's body is not read.
      res.destroy();
      if (status >= 200 && status < 300) resolve({ ok: true, status });
      else if (status >= 300 && status < 400) resolve({ ok: false, status, error: `redirect (${status}) not followed` });
      else resolve({ ok: false, status, error: `the receiver answered ${status}` });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError';
      resolve({ ok: false, error: timedOut ? `no answer within ${timeoutMs} ms` : `${err.code ?? 'error'}: ${err.message}` });
    });
    req.end(body);
  });
}
