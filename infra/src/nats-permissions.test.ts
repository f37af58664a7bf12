import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findNatsServer } from './nats-server.js';
import { FleetCredentials, hostPermissions } from './nats-permissions.js';

const dir = mkdtempSync(join(tmpdir(), 'flurry-perm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the generated NATS users', () => {
  it('make a configuration nats-server accepts', () => {
    const creds = FleetCredentials.generate(['host-1', 'host-2']);
    creds.addHost('spare_3');
    const file = join(dir, 'nats.conf');
    writeFileSync(file, `listen: 127.0.0.1:4999\n${creds.authorizationConfig()}`);
    const bin = findNatsServer();
    expect(bin, 'nats-server must be installed').toBeDefined();
    const out = execFileSync(bin!, ['-t', '-c', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out + '').not.toMatch(/error/i);
    for (const user of ['admin', 'gateway', 'host-host-1', 'host-host-2', 'host-spare_3']) expect(creds.authorizationConfig()).toContain(`user: "${user}"`);
  });

  it('give every user its own password and inbox, and keep a host user once made', () => {
    const creds = FleetCredentials.generate(['a']);
    expect(creds.addHost('a')).toBe(creds.host('a'));
    const passwords = new Set([creds.admin.password, creds.gateway.password, creds.host('a').password]);
    expect(passwords.size).toBe(3);
    expect(creds.host('a').inboxPrefix).toBe('_INBOX_host-a');
    expect(creds.gateway.inboxPrefix).toBe('_INBOX_gateway');
  });

  it('refuse a host id that is not one subject token', () => {
    expect(() => FleetCredentials.generate(['a.b'])).toThrow(/host id/);
    expect(() => FleetCredentials.generate(['*'])).toThrow(/host id/);
  });

  it('let a host subscribe to its own subjects only, and write no module, record or upload', () => {
    const p = hostPermissions('h1');
    expect(p.subscribe.allow).toContain('flurry.host.h1.>');
    expect(p.subscribe.allow).toContain('_INBOX_host-h1.>');
    expect(p.subscribe.allow.some((s) => s.startsWith('flurry.host.*') || s === '>' || s.startsWith('_INBOX.'))).toBe(false);
    expect(p.publish.allow.filter((s) => /^\$(KV|O)\./.test(s))).toEqual(['$KV.flurry_hosts.h1', '$O.flurry_job_outputs.C.>', '$O.flurry_job_outputs.M.>']);
    expect(p.publish.deny).toEqual(expect.arrayContaining(['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.MSG.DELETE.>']));
    // Guest logs: added to, never read (the owner reads them through the gateway).
    expect(p.publish.allow).toContain('flurry.logs.>');
    expect(p.publish.deny).toEqual(expect.arrayContaining(['$JS.API.STREAM.MSG.GET.FLURRY_GUEST_LOGS', '$JS.API.CONSUMER.CREATE.FLURRY_GUEST_LOGS']));
  });
});
