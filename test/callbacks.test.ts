// Job callbacks against a real fleet (nats-server, gateway, one host): the
// submit check refuses loopback and metadata addresses unless the operator
// allows them, deliveries are signed with the tenant's secret (checked with
// the SDK's helper), retried, never redirected, recorded on the job, and
// carried on by the next coordinator when the one delivering dies.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { Flurry, verifyCallbackSignature } from '@flurry/sdk';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { startGateway, type RunningService } from '../infra/src/services.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, jobRecord, until } from './helpers/gateway-api.js';
import { b64, submitJob } from './helpers/jobs.js';

const ATTEMPTS = 3;
const BACKOFF_MS = 300;

interface Delivery { at: number; headers: IncomingHttpHeaders; body: string; res: ServerResponse }

/** A callback receiver on 127.0.0.1: records each POST; `answer` decides the reply (or holds it). */
async function receiver(answer: (d: Delivery, n: number) => void): Promise<{ url: string; got: Delivery[]; server: Server }> {
  const got: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const d = { at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString(), res };
      got.push(d);
      answer(d, got.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=t0k`, got, server };
}

function close(server: Server): void {
  server.closeAllConnections();
  server.close();
}

describe('callbacks', () => {
  let fleet: LocalFleet;
  const api = gatewayApi(() => fleet.url);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 1,
      hostEnv: { FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: {
        FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000',
        FLURRY_CALLBACK_ALLOW: '127.0.0.1', FLURRY_CALLBACK_ATTEMPTS: String(ATTEMPTS), FLURRY_CALLBACK_BACKOFF_MS: String(BACKOFF_MS), FLURRY_CALLBACK_MAX_BACKOFF_MS: '2000',
      },
    });
    expect((await deploy(fleet.url, 'pattern', guestProgram('pattern'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const submit = (callbackUrl: string) => submitJob(api, { function: 'pattern', clones: 2, init: b64({ mib: 1 }), callbackUrl });

  const callbackSettled = (id: string) =>
    until(`job ${id}'s callback to settle`, async () => {
      const job = await jobRecord(api, id);
      return job.callback && job.callback.state !== 'pending' ? job : undefined;
    }, 60_000);

  /** A gateway on the same broker and master secret, without the allow-list, with API keys for two tenants and the default one. */
  async function strictGateway(): Promise<RunningService> {
    return startGateway({
      natsUrl: fleet.natsUrl,
      logFile: join(fleet.dataDir, 'logs', 'gateway-strict.log'),
      env: {
        ...fleet.gatewayNatsEnv(),
        FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000', FLURRY_CALLBACK_SECRET_FILE: join(fleet.dataDir, 'callback-secret'),
        FLURRY_API_KEYS: 'key-acme-0001=acme,key-globex-01=globex,key-default-1=default',
      },
    });
  }

  it('submit - callbacks to 127.0.0.1 and 169.254.169.254 are refused with 400 unless allow-listed; nothing is created', async () => {
    const strict = await strictGateway();
    const other = String(strict.ready.url);
    try {
      const post = (url: string, callbackUrl: string) =>
        fetch(`${url}/v1/jobs`, { method: 'POST', headers: { authorization: 'Bearer key-acme-0001', 'content-type': 'application/json' }, body: JSON.stringify({ function: 'pattern', clones: 1, callbackUrl }) });
      const refused: Record<string, RegExp> = {
        'http://127.0.0.1:9/hook': /may not point to a loopback address/,
        'http://169.254.169.254/latest/meta-data/': /may not point to a link-local or cloud metadata address/,
        'http://[::ffff:127.0.0.1]:9/': /loopback/,
        'http://[fd00:ec2::254]/': /private \(unique local\)/,
        'http://localhost:9/': /localhost resolves to/,
        'http://10.1.2.3/': /private \(RFC 1918\)/,
        'https://user:secret@example.com/': /credentials/,
        'file:///etc/passwd': /must be an http or https URL/,
      };
      const deployed = await fetch(`${other}/v1/functions/pattern`, { method: 'PUT', headers: { authorization: 'Bearer key-acme-0001' }, body: guestProgram('pattern') as Uint8Array<ArrayBuffer> });
      expect(deployed.status).toBe(201);
      for (const [callbackUrl, message] of Object.entries(refused)) {
        const res = await post(other, callbackUrl);
        const body = await json<{ error: { code: string; message: string } }>(res, 400);
        expect(body.error.code, callbackUrl).toBe('bad_request');
        expect(body.error.message, callbackUrl).toMatch(message);
        expect(res.headers.get('x-flurry-error')).toBe('bad_request');
      }
      const listed = await json<{ jobs: JobRecord[] }>(await fetch(`${other}/v1/jobs`, { headers: { authorization: 'Bearer key-acme-0001' } }));
      expect(listed.jobs).toEqual([]);
      // The fleet's own gateway allows 127.0.0.1 only: the metadata address stays refused there.
      expect((await json<{ error: { message: string } }>(await api('POST', '/v1/jobs', { function: 'pattern', clones: 1, callbackUrl: 'http://169.254.169.254/' }), 400)).error.message).toMatch(/metadata/);
      const allowed = await api('POST', '/v1/jobs', { function: 'pattern', clones: 1, init: b64({ mib: 1 }), callbackUrl: 'http://127.0.0.1:9/allowed' });
      const job = (await json<{ job: JobRecord }>(allowed, 202)).job;
      expect(job.callback).toEqual({ state: 'pending', attempts: 0 });
      // Nothing listens on port 9: every attempt fails, and says why.
      const settled = await callbackSettled(job.id);
      expect(settled.callback).toMatchObject({ state: 'failed', attempts: ATTEMPTS });
      expect(settled.callback?.lastError).toMatch(/ECONNREFUSED/);
    } finally {
      await strict.stop(5000);
    }
  });

  it('secret - each tenant reads only its own; every gateway with the same master agrees; none is logged', async () => {
    const strict = await strictGateway();
    const other = String(strict.ready.url);
    try {
      const secretOf = async (key?: string) => {
        const res = await fetch(`${other}/v1/callback-secret`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
        return { status: res.status, body: (await res.json()) as { tenant?: string; secret?: string } };
      };
      expect((await secretOf()).status).toBe(401);
      const acme = await secretOf('key-acme-0001');
      const globex = await secretOf('key-globex-01');
      expect(acme.body.tenant).toBe('acme');
      expect(globex.body.tenant).toBe('globex');
      expect(acme.body.secret).toMatch(/^[0-9a-f]{64}$/);
      expect(acme.body.secret).not.toBe(globex.body.secret);
      const mine = await new Flurry({ url: fleet.url }).jobs.callbackSecret();
      expect((await secretOf('key-default-1')).body.secret).toBe(mine);
      expect(mine).not.toBe(acme.body.secret);
      for (const s of [fleet.gateway, strict]) {
        const log = s.lines.join('\n');
        for (const secret of [mine, acme.body.secret!, globex.body.secret!]) expect(log).not.toContain(secret);
      }
      expect(strict.lines.join('\n')).toContain('"secrets":"[redacted]"');
    } finally {
      await strict.stop(5000);
    }
  });

  it('signed - the final record is POSTed once, signed with the tenant secret, verified by the SDK helper, and recorded delivered', async () => {
    const r = await receiver((d) => d.res.end('thanks'));
    try {
      const secret = await new Flurry({ url: fleet.url }).jobs.callbackSecret();
      const job = await submit(r.url);
      const done = await callbackSettled(job.id);
      expect(done.state).toBe('done');
      expect(done.callback).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 200 });
      expect(done.callback?.at).toBeGreaterThanOrEqual(done.finishedAt!);
      expect(r.got).toHaveLength(1);
      const [d] = r.got;
      expect(d.headers).toMatchObject({ 'content-type': 'application/json', 'flurry-job-id': job.id, 'flurry-callback-attempt': '1' });
      const signature = d.headers['flurry-signature'] as string;
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(await verifyCallbackSignature(secret, d.body, signature)).toBe(true);
      // Another tenant's secret, or a changed body, does not verify.
      const otherSecret = (await strictSecret('key-acme-0001'));
      expect(await verifyCallbackSignature(otherSecret, d.body, signature)).toBe(false);
      expect(await verifyCallbackSignature(secret, d.body.replace('"done"', '"failed"'), signature)).toBe(false);
      const body = JSON.parse(d.body) as JobRecord;
      expect(body).toMatchObject({ id: job.id, tenant: 'default', state: 'done', counts: { done: 2 } });
      expect(body.callback).toBeUndefined();
    } finally {
      close(r.server);
    }
  });

  /** acme's secret, read through a short-lived gateway with API keys. */
  async function strictSecret(key: string): Promise<string> {
    const strict = await strictGateway();
    try {
      return (await json<{ secret: string }>(await fetch(`${String(strict.ready.url)}/v1/callback-secret`, { headers: { authorization: `Bearer ${key}` } }))).secret;
    } finally {
      await strict.stop(5000);
    }
  }

  it('retries - a receiver answering 500 gets the configured attempts, further apart each time; then the job records failed', async () => {
    const r = await receiver((d) => {
      d.res.statusCode = 500;
      d.res.end('broken');
    });
    try {
      const secret = await new Flurry({ url: fleet.url }).jobs.callbackSecret();
      const job = await submit(r.url);
      const settled = await callbackSettled(job.id);
      expect(settled.state).toBe('done');
      expect(settled.callback).toMatchObject({ state: 'failed', attempts: ATTEMPTS, lastStatus: 500, lastError: 'the receiver answered 500' });
      expect(r.got.map((d) => d.headers['flurry-callback-attempt'])).toEqual(['1', '2', '3']);
      for (const d of r.got) expect(await verifyCallbackSignature(secret, d.body, d.headers['flurry-signature'] as string)).toBe(true);
      // Backoff: at least 300 ms, then 600 ms between attempts (a lower bound; a slow machine only waits longer).
      expect(r.got[1].at - r.got[0].at).toBeGreaterThanOrEqual(BACKOFF_MS - 20);
      expect(r.got[2].at - r.got[1].at).toBeGreaterThanOrEqual(2 * BACKOFF_MS - 20);
      // No attempt after the last.
      await new Promise((res) => setTimeout(res, 4 * BACKOFF_MS));
      expect(r.got).toHaveLength(ATTEMPTS);
    } finally {
      close(r.server);
    }
  });

  it('redirect - a 302 is not followed (its target never hears of it); the attempts fail with the status', async () => {
    const target = await receiver((d) => d.res.end());
    const r = await receiver((d) => {
      d.res.writeHead(302, { location: target.url });
      d.res.end();
    });
    try {
      const job = await submit(r.url);
      const settled = await callbackSettled(job.id);
      expect(settled.callback).toMatchObject({ state: 'failed', attempts: ATTEMPTS, lastStatus: 302, lastError: 'redirect (302) not followed' });
      expect(r.got).toHaveLength(ATTEMPTS);
      expect(target.got).toHaveLength(0);
    } finally {
      close(r.server);
      close(target.server);
    }
  });

  it('takeover - the job is done while its callback is held; the coordinator dies; the next one delivers it', async () => {
    // The first delivery is held unanswered; later ones are answered.
    const r = await receiver((d, n) => {
      if (n > 1) d.res.end();
    });
    try {
      const secret = await new Flurry({ url: fleet.url }).jobs.callbackSecret();
      const job = await submit(r.url);
      await until('the first delivery', async () => (r.got.length > 0 ? true : undefined), 60_000);
      // Delivery does not hold the job up: it is done, its callback pending with no attempt recorded.
      const held = await jobRecord(api, job.id);
      expect(held.state).toBe('done');
      expect(held.callback).toEqual({ state: 'pending', attempts: 0 });
      await fleet.restartGateway({ hard: true });
      const settled = await callbackSettled(job.id);
      expect(settled.callback).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 200 });
      // At least once: the attempt the dead coordinator made is made again, with the same body.
      expect(r.got).toHaveLength(2);
      expect(r.got[1].body).toBe(r.got[0].body);
      for (const d of r.got) expect(await verifyCallbackSignature(secret, d.body, d.headers['flurry-signature'] as string)).toBe(true);
    } finally {
      close(r.server);
    }
  });
});
