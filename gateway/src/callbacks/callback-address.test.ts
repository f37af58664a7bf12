import { describe, expect, it } from 'vitest';
import { FlurryError } from '@flurry/core';
import { CallbackAllowList, refusedRange, resolveCallbackTarget, type Resolver } from './callback-address.js';

/** A resolver that answers from a table (names resolving where a test wants them). */
function table(entries: Record<string, string[]>): Resolver {
  return async (hostname) => {
    const addresses = entries[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

async function refusal(p: Promise<unknown>): Promise<FlurryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(FlurryError);
  return err as FlurryError;
}

describe('refusedRange', () => {
  it('IPv4 - loopback, private, link-local, metadata, CGNAT, unspecified, broadcast, multicast and reserved are refused', () => {
    const refused: Record<string, string> = {
      '127.0.0.1': 'loopback', '127.255.0.9': 'loopback', '10.1.2.3': 'private', '172.16.0.1': 'private', '172.31.255.254': 'private', '192.168.1.1': 'private',
      '169.254.0.1': 'linkLocal', '169.254.169.254': 'linkLocal', '100.64.0.1': 'carrierGradeNat', '100.127.255.254': 'carrierGradeNat',
      '0.0.0.0': 'unspecified', '255.255.255.255': 'broadcast', '224.0.0.1': 'multicast', '239.255.255.250': 'multicast', '240.0.0.1': 'reserved', '198.18.0.1': 'reserved',
    };
    for (const [address, range] of Object.entries(refused)) expect(refusedRange(address), address).toBe(range);
  });

  it('IPv4 - public unicast addresses pass, including neighbours of the private ranges', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '169.255.0.1', '11.0.0.1', '192.169.0.1']) expect(refusedRange(address), address).toBeUndefined();
  });

  it('IPv6 - loopback, unique local (fd00:ec2::254 metadata), link-local, unspecified, multicast and IPv4-carrying ranges are refused', () => {
    const refused: Record<string, string> = {
      '::1': 'loopback', '::': 'unspecified', 'fd00:ec2::254': 'uniqueLocal', 'fc00::1': 'uniqueLocal', 'fe80::1': 'linkLocal', 'febf::1': 'linkLocal', 'ff02::1': 'multicast',
      '64:ff9b::a9fe:a9fe': 'rfc6052', '2002:7f00:1::': '6to4', '2001::1': 'teredo', '2001:db8::1': 'reserved', '::7f00:1': 'ipv4Compatible',
    };
    for (const [address, range] of Object.entries(refused)) expect(refusedRange(address), address).toBe(range);
    for (const address of ['2606:4700:4700::1111', '2a00:1450:4001::200e']) expect(refusedRange(address), address).toBeUndefined();
  });

  it('mapped - an IPv4-mapped IPv6 address is judged as the IPv4 address it carries', () => {
    expect(refusedRange('::ffff:127.0.0.1')).toBe('loopback');
    expect(refusedRange('::ffff:169.254.169.254')).toBe('linkLocal');
    expect(refusedRange('::ffff:a00:1')).toBe('private');
    expect(refusedRange('::ffff:100.64.0.1')).toBe('carrierGradeNat');
    expect(refusedRange('::ffff:93.184.216.34')).toBeUndefined();
  });

  it('invalid - what is not an address is refused', () => {
    expect(refusedRange('localhost')).toBe('invalid');
  });
});

describe('resolveCallbackTarget', () => {
  const none = CallbackAllowList.none;

  it('literal - loopback and metadata URLs are refused with a clear 400, v4, v6 and mapped alike', async () => {
    for (const url of ['http://127.0.0.1:8080/hook', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/', 'http://[fd00:ec2::254]/', 'http://[::ffff:127.0.0.1]/', 'http://10.0.0.5/', 'http://0.0.0.0/', 'http://2130706433/', 'http://0x7f.1/']) {
      const err = await refusal(resolveCallbackTarget(url, none, table({})));
      expect(err.code, url).toBe('bad_request');
      expect(err.message, url).toMatch(/may not point to a .* address; an operator can allow it with FLURRY_CALLBACK_ALLOW/);
    }
    expect((await refusal(resolveCallbackTarget('http://169.254.169.254/', none))).message).toContain('link-local or cloud metadata');
  });

  it('names - a name resolving to a private address is refused, as is one with any private address among public ones', async () => {
    const dns = table({ 'internal.example': ['10.0.0.7'], 'mixed.example': ['93.184.216.34', '192.168.0.10'], 'v6.example': ['2606:4700::1', 'fe80::1'], 'rebind.example': ['::ffff:169.254.169.254'] });
    for (const host of ['internal.example', 'mixed.example', 'v6.example', 'rebind.example']) {
      const err = await refusal(resolveCallbackTarget(`https://${host}/hook`, none, dns));
      expect(err.code, host).toBe('bad_request');
      expect(err.message, host).toContain(`${host} resolves to`);
    }
  });

  it('names - localhost through the system resolver is refused', async () => {
    expect((await refusal(resolveCallbackTarget('http://localhost:9/hook', none))).code).toBe('bad_request');
  });

  it('names - a public name passes with all its addresses', async () => {
    const target = await resolveCallbackTarget('https://hooks.example/done?token=x', none, table({ 'hooks.example': ['93.184.216.34', '2606:4700::1'] }));
    expect(target.hostname).toBe('hooks.example');
    expect(target.addresses).toEqual([{ address: '93.184.216.34', family: 4 }, { address: '2606:4700::1', family: 6 }]);
  });

  it('form - only http(s), no credentials, a host that resolves', async () => {
    const dns = table({ 'hooks.example': ['93.184.216.34'] });
    for (const url of ['ftp://hooks.example/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', `http://hooks.example/${'a'.repeat(2100)}`]) {
      expect((await refusal(resolveCallbackTarget(url, none, dns))).message, url).toContain('must be an http or https URL');
    }
    expect((await refusal(resolveCallbackTarget('https://user:pw@hooks.example/', none, dns))).message).toContain('credentials');
    expect((await refusal(resolveCallbackTarget('https://nowhere.example/', none, dns))).message).toContain('does not resolve');
  });

  it('resolver - a resolver that fails for another reason is unavailable (retry), not the tenant\'s fault', async () => {
    const failing: Resolver = async () => { throw Object.assign(new Error('queryA EAI_AGAIN'), { code: 'EAI_AGAIN' }); };
    const err = await refusal(resolveCallbackTarget('https://hooks.example/', none, failing));
    expect(err.code).toBe('unavailable');
    expect(err.retryAfterSeconds).toBe(1);
  });

  it('allow-list - CIDRs and single addresses let their addresses through, mapped ones too; others stay refused', async () => {
    const allow = CallbackAllowList.parse('127.0.0.1, 10.0.0.0/8, fd00::/8');
    const dns = table({ 'internal.example': ['10.9.9.9'], 'mixed.example': ['10.0.0.1', '192.168.0.1'] });
    await resolveCallbackTarget('http://127.0.0.1:9000/hook', allow, dns);
    await resolveCallbackTarget('http://[::ffff:127.0.0.1]:9000/hook', allow, dns);
    await resolveCallbackTarget('http://[fd00:ec2::254]/', allow, dns);
    await resolveCallbackTarget('http://internal.example/', allow, dns);
    expect((await refusal(resolveCallbackTarget('http://127.0.0.2/', allow, dns))).code).toBe('bad_request');
    expect((await refusal(resolveCallbackTarget('http://169.254.169.254/', allow, dns))).code).toBe('bad_request');
    expect((await refusal(resolveCallbackTarget('http://mixed.example/', allow, dns))).message).toContain('192.168.0.1');
  });

  it('allow-list - a host name (or *.domain) is trusted wherever it resolves; an address literal is not a name', async () => {
    const allow = CallbackAllowList.parse('hooks.internal,*.corp.example');
    const dns = table({ 'hooks.internal': ['10.0.0.1'], 'a.b.corp.example': ['192.168.1.1'], 'corp.example.evil': ['10.0.0.1'] });
    await resolveCallbackTarget('http://hooks.internal/', allow, dns);
    await resolveCallbackTarget('http://HOOKS.internal./', allow, table({ 'hooks.internal.': ['10.0.0.1'] }));
    await resolveCallbackTarget('http://a.b.corp.example/', allow, dns);
    expect((await refusal(resolveCallbackTarget('http://corp.example.evil/', allow, dns))).code).toBe('bad_request');
  });

  it('allow-list - a malformed entry stops the gateway with the variable named', () => {
    expect(() => CallbackAllowList.parse('10.0.0.0/33')).toThrow(/FLURRY_CALLBACK_ALLOW: "10.0.0.0\/33" is not a CIDR range/);
    expect(() => CallbackAllowList.parse('http://x/')).toThrow(/FLURRY_CALLBACK_ALLOW/);
    expect(CallbackAllowList.parse('').empty).toBe(true);
    expect(CallbackAllowList.parse('10.0.0.0/8,hooks.internal').toJSON()).toEqual(['10.0.0.0/8', 'hooks.internal']);
  });
});
