/** How the stub gateway answers: JSON with the gateway's request id, and platform errors as the gateway shapes them. */
import type { ServerResponse } from 'node:http';

export const STUB_REQUEST_ID = 'req-1';

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-flurry-request-id': STUB_REQUEST_ID }).end(JSON.stringify(value));
}

/** A platform error: `{ error: { code, message } }` with the `x-flurry-error` marker, and any `extra` headers. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'x-flurry-error': code, 'x-flurry-request-id': STUB_REQUEST_ID, ...extra })
    .end(JSON.stringify({ error: { code, message } }));
}
