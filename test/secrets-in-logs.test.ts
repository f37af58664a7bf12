// Secrets stay out of logs: a fleet (nats-server, a gateway and a host, each a
// real process writing its log file as the launcher does) runs with API keys
// and a NATS_URL carrying a user and password (a server without authorization
// accepts them), at LOG_LEVEL trace. Calls with good keys, wrong keys and no
// key, a deploy and a job; then what each process printed and every log file
// in the fleet's folder are read: no key, no password, and the configuration
// was logged, redacted.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { startNatsServer, type RunningNatsServer } from '../infra/src/nats-server.js';
import { startGateway, startHost, type RunningService } from '../infra/src/services.js';
import { guestProgram } from './helpers/functions.js';
import { json, until } from './helpers/gateway-api.js';
import { finishedJob } from './helpers/jobs.js';

const KEY_ALPHA = 'alpha-key-5c0ffee1d2e3';
const KEY_BETA = 'beta-key-9b8a7f6e5d4c';
const WRONG_KEY = 'wrong-key-31415926535';
const NATS_PASSWORD = 'nats-pw-e2718281828';

let dataDir: string;
let nats: RunningNatsServer;
let services: RunningService[] = [];
let url: string;

const call = (method: string, path: string, key: string | undefined, body?: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method, body, headers: { ...headers, ...(key ? { authorization: `Bearer ${key}` } : {}) } });

/** Every file under `dir` whose name ends in .log. */
function logFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return logFiles(path);
    return name.endsWith('.log') ? [path] : [];
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'flurry-secrets-'));
  nats = await startNatsServer({ dataDir: join(dataDir, 'nats') });
  const natsUrl = nats.url.replace('nats://', `nats://flurry:${NATS_PASSWORD}@`);
  const env = { LOG_LEVEL: 'trace' };
  services.push(await startHost({ natsUrl, hostId: 'host-1', env: { ...env, FLURRY_HEARTBEAT_MS: '250' }, logFile: join(dataDir, 'logs', 'host-1.log') }));
  const gateway = await startGateway({
    natsUrl, env: { ...env, FLURRY_API_KEYS: `${KEY_ALPHA}=alpha,${KEY_BETA}=beta` }, logFile: join(dataDir, 'logs', 'gateway.log'),
  });
  services.push(gateway);
  url = String(gateway.ready.url);
  await until('the gateway to list the host', async () => {
    const res = await call('GET', '/v1/hosts', KEY_ALPHA);
    return res.ok && ((await res.json()) as { hosts: unknown[] }).hosts.length === 1 ? true : undefined;
  }, 30_000);
}, 60_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop(10_000)));
  await nats?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('secrets in logs', () => {
  it('calls - good keys serve their tenant; wrong, malformed and missing keys get 401', async () => {
    for (const name of ['echo', 'counter']) expect((await call('PUT', `/v1/functions/${name}`, KEY_ALPHA, guestProgram(name) as Uint8Array<ArrayBuffer>)).status).toBe(201);
    expect((await call('POST', '/fn/echo/x?y=1', KEY_ALPHA, 'hello', { cookie: `session=${KEY_BETA}` })).status).toBe(200);
    expect((await call('GET', '/v1/functions/echo', KEY_BETA)).status).toBe(404);
    const { job } = await json<{ job: JobRecord }>(await call('POST', '/v1/jobs', KEY_ALPHA, JSON.stringify({ function: 'counter', clones: 2 })), 202);
    expect((await finishedJob((method, path) => call(method, path, KEY_ALPHA), job.id)).state).toBe('done');
    for (const authorization of [`Bearer ${WRONG_KEY}`, `Bearer ${KEY_ALPHA}x`, `Basic ${Buffer.from(`x:${KEY_ALPHA}`).toString('base64')}`, KEY_ALPHA, undefined]) {
      const res = await fetch(`${url}/v1/functions`, { headers: authorization ? { authorization } : {} });
      expect(res.status, String(authorization)).toBe(401);
      await res.body?.cancel();
    }
  }, 120_000);

  it('log files - no key, no password; the configuration was logged with the password and the keys redacted', async () => {
    await Promise.all(services.map((s) => s.stop(10_000)));
    await nats.stop();
    const files = logFiles(dataDir);
    expect(files.map((f) => f.slice(dataDir.length + 1)).sort()).toEqual(['logs/gateway.log', 'logs/host-1.log', 'nats/nats-server.log']);
    const secrets = [KEY_ALPHA, KEY_BETA, WRONG_KEY, NATS_PASSWORD, Buffer.from(`x:${KEY_ALPHA}`).toString('base64')];
    // What each process printed itself (the launcher strips URL credentials from what it writes to the files as well).
    for (const s of services) {
      const printed = s.lines.join('\n');
      expect(printed).toContain('"msg":"starting"');
      for (const secret of secrets) expect(printed.includes(secret), `${s.name} printed ${secret}`).toBe(false);
    }
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const secret of secrets) expect(text.includes(secret), `${file} contains ${secret}`).toBe(false);
    }
    const starting = (file: string) => readFileSync(join(dataDir, 'logs', file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === 'starting');
    const gateway = starting('gateway.log');
    expect(gateway.config.natsServers).toEqual([expect.stringMatching(/^nats:\/\/flurry:\[redacted\]@127\.0\.0\.1:\d+$/)]);
    expect(gateway.config.auth).toBe('2 keys (0 admin, 2 user)');
    expect(starting('host-1.log').config.natsServers).toEqual([expect.stringMatching(/^nats:\/\/flurry:\[redacted\]@127\.0\.0\.1:\d+$/)]);
  }, 60_000);
});
