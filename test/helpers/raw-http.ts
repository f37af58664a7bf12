/**
 * One HTTP/1.1 exchange over a bare TCP socket: the request goes out byte for
 * byte as given (fetch and node:http refuse or rewrite control characters,
 * dot segments, unknown methods and oversized headers, which is what a fuzz
 * must send). The answer ends where its framing says (Content-Length, the last
 * chunk, or the server closing), and the socket is closed then. The request is
 * never half-closed and should not say `Connection: close`: Node's server
 * aborts a request whose client half-closes, and closing after an answer
 * while a large body is still arriving resets the connection, which can
 * destroy the answer before the client reads it.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Map<string, string>;
  body: Buffer;
}

/** The failure of an exchange: no answer within `timeoutMs`, or the connection ended without a whole answer. */
export class RawHttpError extends Error {
  override readonly name = 'RawHttpError';
}

/** Sends `request` (made with `method`) to 127.0.0.1:`port` and reads one answer. */
export function rawExchange(port: number, method: string, request: Buffer, timeoutMs: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (answer: RawAnswer | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    const timer = setTimeout(() => finish(new RawHttpError(`no complete answer within ${timeoutMs} ms (got ${received.length} bytes)`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parseAnswer(received, method, false);
      if (answer) finish(answer);
    });
    const closed = (why: string) => {
      try {
        finish(parseAnswer(received, method, true) ?? new RawHttpError(why));
      } catch (err) {
        finish(err as Error);
      }
    };
    socket.on('end', () => closed('the server closed the connection without an answer'));
    socket.on('error', (err) => closed(`the connection failed before a whole answer: ${err.message}`));
    socket.write(request);
  });
}

/**
 * The answer in `raw` once it is whole (at the connection's end when `closed`:
 * an answer framed by the close, or what arrived of one), else undefined.
 */
function parseAnswer(raw: Buffer, method: string, closed: boolean): RawAnswer | undefined {
  let at = raw.indexOf('\r\n\r\n');
  // Interim answers (100 Continue) come before the real one.
  while (at >= 0 && /^HTTP\/1\.1 1\d\d /.test(raw.subarray(0, 16).toString('latin1'))) {
    raw = raw.subarray(at + 4);
    at = raw.indexOf('\r\n\r\n');
  }
  if (at < 0) {
    if (closed && raw.length > 0) throw new RawHttpError(`the answer has no complete head: ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`);
    return undefined;
  }
  const [statusLine, ...headerLines] = raw.subarray(0, at).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new RawHttpError(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const status = Number(m[1]);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const rest = raw.subarray(at + 4);
  if (method === 'HEAD' || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
  // An event stream that was answered goes on until the client leaves (GET /v1/dashboard/events): its head is the answer.
  if (status === 200 && headers.get('content-type')?.startsWith('text/event-stream')) return { status, headers, body: rest };
  if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
    const { body, complete } = dechunk(rest);
    return complete || closed ? { status, headers, body } : undefined;
  }
  const length = headers.get('content-length');
  if (length !== undefined) return rest.length >= Number(length) || closed ? { status, headers, body: rest.subarray(0, Number(length)) } : undefined;
  return closed ? { status, headers, body: rest } : undefined;
}

/** A chunked body's bytes so far, and whether its last chunk arrived. */
function dechunk(raw: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) return { body: Buffer.concat(parts), complete: raw.indexOf('\r\n\r\n', eol) >= 0 };
    if (!(size > 0) || raw.length < eol + 2 + size + 2) return { body: Buffer.concat(parts), complete: false };
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
