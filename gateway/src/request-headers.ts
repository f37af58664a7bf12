/**
 * Reads a request's headers. On Node's HTTP server straight from the
 * IncomingMessage's raw list: the first `c.req.header()` would otherwise make
 * the whole list into an undici `Headers` (about 5 KiB and a sort a call,
 * the gateway's largest allocation outside Hono's own). Elsewhere (tests
 * calling the app without a server) from the standard Request. The call
 * routes (call-route/) read the IncomingMessage with `rawHeader`, and hand a
 * guest its headers with `rawHeaderList` (every guest's request is theirs).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** One header (`name` in lower case), as `Headers.get` gives it: a repeated one's values joined with ", ". */
export function header(c: Context, name: string): string | undefined {
  const incoming = incomingOf(c);
  return incoming ? rawHeader(incoming, name) : c.req.header(name);
}

/** `header` on Node's IncomingMessage. */
export function rawHeader(incoming: IncomingMessage, name: string): string | undefined {
  const raw = incoming.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toLowerCase() === name) value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
  }
  return value;
}

/**
 * Every header for a guest (docs/guest-abi.md), from Node's IncomingMessage: names in lower case, a repeated header
 * as separate entries, in the order sent; `authorization` left out when `hideAuthorization` (the gateway's key is not
 * the guest's to see).
 */
export function rawHeaderList(incoming: IncomingMessage, hideAuthorization: boolean): [string, string][] {
  const out: [string, string][] = [];
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    // HTTP/2 pseudo-headers (:path, ...) are not headers.
    if (name.charCodeAt(0) === 58 || (hideAuthorization && name === 'authorization')) continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}
