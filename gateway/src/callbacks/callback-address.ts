/**
 * Where a job's callback may go. A callback URL is tenant input that makes
 * the gateway open a connection: without a check it reaches the broker, the
 * hosts, the cloud's metadata service and anything else on the gateway's
 * network (server-side request forgery). So a callback goes only to public
 * unicast addresses, every address its host name resolves to, unless the
 * operator's allow-list (FLURRY_CALLBACK_ALLOW) names the address range or
 * the host name.
 *
 * Classification is ipaddr.js's: it knows the special-purpose registries of
 * both families (RFC 6890 and successors), including the ranges that embed an
 * IPv4 address in an IPv6 one (mapped, NAT64, 6to4, Teredo). Anything it does
 * not call plain `unicast` is refused, so a range added to the registries is
 * refused before anyone thinks of it.
 *
 * The same check runs at submit (a clear 400) and again right before each
 * delivery, whose connection is pinned to an address that passed
 * (callback-post.ts): a name that resolves elsewhere by then (DNS rebinding)
 * reaches nothing it should not.
 */
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { ConfigError, FlurryError } from '@flurry/core';

/** Resolves a host name to all its addresses (dns.lookup: /etc/hosts and the system resolver, as a client connecting would). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** How long a submit waits for the resolver before answering 503. */
const RESOLVE_TIMEOUT_MS = 5000;

/** What the operator allows beyond public unicast addresses: ranges (CIDR or single addresses) and host names (`*.suffix` for a domain's names). */
export class CallbackAllowList {
  private constructor(
    private readonly ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][],
    private readonly names: string[],
    private readonly suffixes: string[],
  ) {}

  static readonly none = new CallbackAllowList([], [], []);

  /**
   * `10.0.0.0/8, 127.0.0.1, fd00::/8, hooks.internal, *.corp.example`.
   *
   * @example
   * CallbackAllowList.parse('127.0.0.1/32,hooks.internal').allowsName('hooks.internal'); // true
   */
  static parse(spec: string | undefined, variable = 'FLURRY_CALLBACK_ALLOW'): CallbackAllowList {
    const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
    const names: string[] = [];
    const suffixes: string[] = [];
    for (const item of (spec ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
      if (item.includes('/')) {
        try {
          ranges.push(ipaddr.parseCIDR(item));
        } catch {
          throw new ConfigError(`${variable}: "${item}" is not a CIDR range`);
        }
      } else if (ipaddr.isValid(item)) {
        const a = ipaddr.parse(item);
        ranges.push([a, a.kind() === 'ipv4' ? 32 : 128]);
      } else if (/^\*\.[a-z0-9.-]+$/.test(item)) suffixes.push(item.slice(1));
      else if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(item)) names.push(item);
      else throw new ConfigError(`${variable}: "${item}" is neither a CIDR range, an address nor a host name`);
    }
    return new CallbackAllowList(ranges, names, suffixes);
  }

  get empty(): boolean {
    return this.ranges.length === 0 && this.names.length === 0 && this.suffixes.length === 0;
  }

  /** The operator trusts this host name wherever it resolves. */
  allowsName(hostname: string): boolean {
    const h = hostname.toLowerCase().replace(/\.$/, '');
    return this.names.includes(h) || this.suffixes.some((s) => h.endsWith(s));
  }

  allowsAddress(address: string): boolean {
    const a = normalize(ipaddr.parse(address));
    return this.ranges.some(([net, bits]) => {
      const n = normalize(net);
      return n.kind() === a.kind() && a.match(n, n.kind() === net.kind() ? bits : bits - 96);
    });
  }

  /** For the logged configuration: ranges and names are no secret. */
  toJSON(): string[] {
    return [...this.ranges.map(([a, b]) => `${a.toString()}/${b}`), ...this.names, ...this.suffixes.map((s) => `*${s}`)];
  }
}

/** An IPv4-mapped IPv6 address is the IPv4 address it carries. */
function normalize(a: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

/**
 * Why a callback may not go to this address, or undefined when it may: the
 * ipaddr.js range name (`loopback`, `private`, `linkLocal`, `uniqueLocal`,
 * `carrierGradeNat`, …) of anything but public unicast. 169.254.169.254 and
 * fd00:ec2::254, the cloud metadata services, are `linkLocal` and
 * `uniqueLocal`; an IPv4-mapped address is judged as the IPv4 address it
 * maps to.
 *
 * @example
 * refusedRange('169.254.169.254'); // 'linkLocal'
 * refusedRange('::ffff:10.0.0.1'); // 'private'
 * refusedRange('93.184.216.34');   // undefined
 */
export function refusedRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'invalid';
  const a = normalize(ipaddr.parse(address));
  const range = a.range();
  if (range !== 'unicast') return range;
  // ::/96 (IPv4-compatible, deprecated): ipaddr.js calls it unicast, yet it only carries an IPv4 address.
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) return 'ipv4Compatible';
  return undefined;
}

/** A callback URL that passed: where to connect (every resolved address passed too). */
export interface CallbackTarget {
  url: URL;
  /** The host name without IPv6 brackets. */
  hostname: string;
  addresses: { address: string; family: 4 | 6 }[];
}

/**
 * Checks a callback URL the way a delivery will use it: http or https, no
 * credentials, and every address of its host allowed. Throws a FlurryError:
 * `bad_request` for a URL that can never be used, `unavailable` (retry) when
 * the resolver did not answer.
 *
 * @example
 * await resolveCallbackTarget('http://127.0.0.1:9/', CallbackAllowList.none); // throws bad_request (loopback)
 */
export async function resolveCallbackTarget(raw: string, allow: CallbackAllowList, resolve: Resolver = systemResolver): Promise<CallbackTarget> {
  const url = parseCallbackUrl(raw);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: { address: string; family: number }[];
  if (ipaddr.isValid(hostname)) addresses = [{ address: hostname, family: ipaddr.parse(hostname).kind() === 'ipv4' ? 4 : 6 }];
  else addresses = await resolveWithin(hostname, resolve);
  if (addresses.length === 0) throw bad(`"callbackUrl" host ${hostname} has no address`);
  const trustedName = !ipaddr.isValid(hostname) && allow.allowsName(hostname);
  for (const { address } of addresses) {
    const range = refusedRange(address);
    if (range && !trustedName && !allow.allowsAddress(address)) {
      const via = address === hostname ? '' : ` (${hostname} resolves to ${address})`;
      throw bad(`"callbackUrl" may not point to a ${describe(range)} address${via}; an operator can allow it with FLURRY_CALLBACK_ALLOW`);
    }
  }
  return { url, hostname, addresses: addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })) };
}

/** The URL's form alone: what submit refuses before resolving anything. */
export function parseCallbackUrl(raw: unknown): URL {
  let url: URL | undefined;
  try {
    url = typeof raw === 'string' && raw.length <= 2048 ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) throw bad('"callbackUrl" must be an http or https URL of at most 2048 characters');
  if (url.username || url.password) throw bad('"callbackUrl" may not carry credentials (user:password@); check the Flurry-Signature header instead');
  return url;
}

async function resolveWithin(hostname: string, resolve: Resolver): Promise<{ address: string; family: number }[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      resolve(hostname),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), RESOLVE_TIMEOUT_MS))),
    ]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') throw bad(`"callbackUrl" host ${hostname} does not resolve`);
    throw new FlurryError('unavailable', `could not resolve the callbackUrl host ${hostname}: ${code ?? (err as Error).message}`, { retryAfterSeconds: 1 });
  } finally {
    clearTimeout(timer);
  }
}

const RANGE_WORDS: Record<string, string> = {
  loopback: 'loopback',
  private: 'private (RFC 1918)',
  uniqueLocal: 'private (unique local)',
  linkLocal: 'link-local or cloud metadata',
  carrierGradeNat: 'carrier-grade NAT',
  unspecified: 'unspecified',
  multicast: 'multicast',
  broadcast: 'broadcast',
};

function describe(range: string): string {
  return RANGE_WORDS[range] ?? `special-purpose (${range})`;
}

function bad(message: string): FlurryError {
  return new FlurryError('bad_request', message);
}
