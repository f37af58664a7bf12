/**
 * Requests Node's HTTP parser refuses before any route sees them (a bare
 * control character or space in the path, an unknown method, a broken chunk,
 * headers over Node's 16 KiB limit) get the API's one JSON error shape, as
 * every other refusal does, instead of Node's bodiless 400 or 431.
 */
import type { Server } from 'node:http';
import type { ServerType } from '@hono/node-server';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '@flurry/core';

/** How long a refused connection is read from (and its bytes dropped) before it is closed. */
const LINGER_MS = 2000;

/** Node's parser errors by their `code`, as Node's own handler answers them; anything else is a malformed request. */
const ANSWERS: Record<string, [status: number, reason: string, code: ErrorCode, message: string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'payload_too_large', 'the request line and headers exceed the server limit (16 KiB)'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large', 'payload_too_large', 'the chunk extensions exceed the server limit'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'bad_request', 'the request did not arrive in time'],
};

/** Installs the answer on `server`: the HTTP/1.1 server `serve()` makes. */
export function answerClientErrors(server: ServerType): void {
  // Connections answered already: Node's parser reports its error again for every later chunk of the same request.
  const answered = new WeakSet<Duplex>();
  (server as Server).on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (answered.has(socket)) return;
    // The client is gone, or an answer already started on this connection: nothing more can be said on it.
    const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const [status, reason, code, message] = ANSWERS[err.code ?? ''] ?? [400, 'Bad Request', 'bad_request', `malformed HTTP request (${err.code ?? err.message})`];
    const body = JSON.stringify({ error: { code, message } });
    answered.add(socket);
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Flurry-Error: ${code}\r\nConnection: close\r\n\r\n${body}`,
    );
    // The parser goes on reading (and dropping) what the client still sends, such as a body after oversized headers,
    // for a moment: closing with unread bytes resets the connection, and the reset can destroy the answer before the
    // client reads it.
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}
