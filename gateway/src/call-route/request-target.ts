/**
 * A request's target as the Hono app sees it, read from Node's
 * IncomingMessage without making a `URL` on the common path.
 *
 * node-server (the Hono app's listener) makes the request's URL with
 * `new URL(scheme://host + incoming.url)`: dot segments resolved, characters
 * outside the URL's sets percent-encoded, a fragment kept apart, and it refuses
 * (400, bodiless) a request whose Host or target it cannot parse. Hono routes
 * on that URL's path percent-decoded by `getPath` (decodeURI, with `%25` and
 * reserved characters kept); the routes hand the guest the text after the
 * URL's first `?` as its query. A target of plain characters with no dot
 * segment is one the URL leaves as it is; anything else is made into a URL
 * here as node-server does, and a request it would refuse is not ours
 * (`undefined`): the Hono listener gives it its usual answer.
 */
import type { IncomingMessage } from 'node:http';
import { getPath } from 'hono/utils/url';

export interface RequestTarget {
  /** The path Hono routes on (percent-decoded as `getPath` does). */
  path: string;
  /** Everything after the URL's first `?`, as sent (`''` when there is none). */
  query: string;
  /** The URL's path, query and fragment (as the URL's `href` has them after the origin), for reading query parameters. */
  pathAndQuery: string;
}

/** Characters the URL parser leaves alone in a path and a query (with `?` and `%`): a target of only these is its own URL. */
const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/%?]*$/;
/** A dot segment (`/.`, `/..`, `%2e`): the URL parser resolves these. */
const DOT_SEGMENT = /\/\.|%2e/i;
/** Any origin: `getPath` looks only past it. */
const ORIGIN = 'http://h';

/** Host header values, and whether node-server accepts each (its check below); few distinct ones reach a gateway. */
const hostVerdicts = new Map<string, boolean>();
const MAX_HOSTS_REMEMBERED = 64;

/** The request's target, or `undefined` when node-server would refuse the request (it is then not ours to answer). */
export function requestTarget(incoming: IncomingMessage, defaultHost: string | undefined): RequestTarget | undefined {
  const raw = incoming.url ?? '';
  let pathAndQuery: string | undefined;
  if (PLAIN_TARGET.test(raw) && !DOT_SEGMENT.test(pathOf(raw)) && hostAccepted(hostOf(incoming) || defaultHost)) pathAndQuery = raw;
  else pathAndQuery = asNodeServerParsesIt(incoming, raw, defaultHost);
  if (pathAndQuery === undefined) return undefined;
  const q = pathAndQuery.indexOf('?');
  return {
    path: pathAndQuery.indexOf('%') < 0 ? pathOf(pathAndQuery) : getPath({ url: ORIGIN + pathAndQuery } as Request),
    query: q < 0 ? '' : pathAndQuery.slice(q + 1),
    pathAndQuery,
  };
}

/** The path before any query or fragment. */
function pathOf(target: string): string {
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}

/** The Host header as Node keeps it (the first of several). */
function hostOf(incoming: IncomingMessage): string | undefined {
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') return raw[i + 1];
  return undefined;
}

/** node-server's check of a Host: the URL's hostname is the Host, or the Host less its port. */
function hostAccepted(host: string | undefined): boolean {
  if (!host) return false;
  let verdict = hostVerdicts.get(host);
  if (verdict === undefined) {
    verdict = urlKeepsHost(host, '/');
    if (hostVerdicts.size >= MAX_HOSTS_REMEMBERED) hostVerdicts.clear();
    hostVerdicts.set(host, verdict);
  }
  return verdict;
}

function urlKeepsHost(host: string, target: string): boolean {
  try {
    const hostname = new URL(`http://${host}${target}`).hostname;
    return hostname.length === host.length || hostname === host.replace(/:\d+$/, '');
  } catch {
    return false;
  }
}

/** What node-server's `newRequest` makes of the target (the gateway serves plain HTTP/1.1), or `undefined` where it refuses. */
function asNodeServerParsesIt(incoming: IncomingMessage, raw: string, defaultHost: string | undefined): string | undefined {
  // A backslash in the path (not the query) is refused.
  const backslash = raw.indexOf('\\');
  if (backslash >= 0) {
    const q = raw.indexOf('?');
    if (q < 0 || backslash < q) return undefined;
  }
  let url: URL;
  try {
    if (raw[0] !== '/' && (raw.startsWith('http://') || raw.startsWith('https://'))) {
      url = new URL(raw);
    } else {
      const host = hostOf(incoming) || defaultHost;
      if (!host || !urlKeepsHost(host, raw)) return undefined;
      url = new URL(`http://${host}${raw}`);
    }
  } catch {
    return undefined;
  }
  // The href past its origin (a user name in an absolute target included: node-server keeps it).
  const href = url.href;
  return href.slice(href.indexOf('/', href.indexOf('://') + 3));
}
