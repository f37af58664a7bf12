// A seeded HTTP fuzz of every gateway route against a real fleet (LocalFleet:
// nats-server, the gateway and a host process). The routes are read from the
// gateway's Hono app, so a new route is fuzzed without being listed here.
// Requests go over bare sockets (raw-http.ts) so that what fetch would refuse
// or rewrite reaches the server as sent. Every answer must be a 2xx, a guest's
// own answer, or a platform error in the one JSON shape with a 4xx or 503
// status; none may hang. Afterwards every process is the one that started and
// the fleet serves a call, a job and a service request.
//
// FLURRY_FUZZ_SEED=<n> replays a run (the seed is printed on failure).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { seededRandom } from '../infra/src/seeded-random.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { runJob } from './helpers/jobs.js';
import { fuzzRequests, gatewayRoutes, type FuzzRequest, type KnownObjects } from './helpers/http-fuzz-cases.js';
import { rawExchange, type RawAnswer } from './helpers/raw-http.js';

const SEED = Number(process.env.FLURRY_FUZZ_SEED ?? 20261206);
const PER_ROUTE = 100;
const PARALLEL = 8;
/** Longer than any answer a bad request should take on a loaded machine; reaching it is a hang. */
const REQUEST_TIMEOUT_MS = 20_000;

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);
let known: KnownObjects;

async function hostPids(): Promise<Record<string, number>> {
  const { hosts } = await json<{ hosts: HostRecord[] }>(await api('GET', '/v1/hosts'));
  return Object.fromEntries(hosts.map((h) => [h.id, h.pid]));
}

async function serviceAnswers(name: string): Promise<void> {
  const res = await until(`service ${name} to answer`, async () => {
    const r = await api('GET', `/svc/${name}/state`);
    return r.status === 200 ? r : (await r.body?.cancel(), undefined);
  }, 60_000);
  expect((await json(res)).members).toEqual([]);
}

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 1,
    hostEnv: { FLURRY_CALL_TIMEOUT_MS: '5000', FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', LOG_LEVEL: 'warn' },
    gatewayEnv: { FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn' },
  });
  for (const name of ['counter', 'room']) expect((await deploy(fleet.url, name, guestProgram(name))).status).toBe(201);
  await json(await api('POST', '/v1/services', { name: 'fuzz-svc', function: 'room', min: 1 }), 201);
  await serviceAnswers('fuzz-svc');
  const { service } = await json<{ service: { instances: { id: string }[] } }>(await api('GET', '/v1/services/fuzz-svc'));
  await json(await fetch(`${fleet.url}/v1/data/fuzz-data`, { method: 'PUT', body: '12' }), 201);
  const job = await runJob(api, { function: 'counter', clones: 2 });
  expect(job.state).toBe('done');
  known = { functionName: 'counter', serviceFunction: 'room', serviceName: 'fuzz-svc', dataName: 'fuzz-data', jobId: job.id, instanceId: service.instances[0].id };
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
});

/** What is wrong with an answer, or undefined when it is one the gateway may give. */
function problemWith(req: FuzzRequest, ans: RawAnswer): string | undefined {
  const code = ans.headers.get('x-flurry-error');
  // A guest's own answer (a call that reached it): its status is the guest's business.
  if (code === undefined && ans.headers.has('x-flurry-host')) return undefined;
  if (ans.status < 400) return ans.status >= 200 ? undefined : `status ${ans.status}`;
  if (ans.status >= 500 && ans.status !== 503) return `status ${ans.status} (${code}): ${ans.body.subarray(0, 300).toString()}`;
  if (!code) return `status ${ans.status} without x-flurry-error: ${ans.body.subarray(0, 300).toString()}`;
  if (req.method === 'HEAD') return undefined;
  if (!ans.headers.get('content-type')?.startsWith('application/json')) return `error with content-type ${ans.headers.get('content-type')}`;
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(ans.body.toString());
  } catch {
    return `error body is not JSON: ${ans.body.subarray(0, 300).toString()}`;
  }
  if (parsed.error?.code !== code || typeof parsed.error.message !== 'string') return `error body is not { error: { code, message } } with the header's code: ${ans.body.subarray(0, 300).toString()}`;
  return undefined;
}

describe('http fuzz', () => {
  it('routes - every route of the app is found (the fuzz covers what the gateway serves)', () => {
    const routes = gatewayRoutes().map((r) => `${r.method} ${r.path}`);
    for (const r of ['PUT /v1/functions/:name', 'ALL /fn/:name/*', 'POST /v1/functions/:name/invoke', 'GET /v1/jobs/:id/clones/:i/output', 'GET /v1/jobs/:id/events', 'POST /v1/instances/:id/migrate', 'ALL /svc/:name/*', 'POST /v1/hosts/:id/drain', 'PUT /v1/data/:name', 'GET /healthz']) {
      expect(routes).toContain(r);
    }
  });

  it(`every route - ${PER_ROUTE} hostile requests each (seed ${SEED}): never a 500, never a hang, errors in the one JSON shape`, async () => {
    const pids = await hostPids();
    const rng = seededRandom(SEED);
    const wasm = guestProgram('counter');
    const requests = gatewayRoutes().flatMap((route) => fuzzRequests(rng, route, PER_ROUTE, known, wasm));
    // Routes interleaved, as many clients would send them.
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [requests[i], requests[j]] = [requests[j], requests[i]];
    }
    const port = Number(new URL(fleet.url).port);
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    const byRoute = new Map<string, Map<number, number>>();
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const req = requests[next++];
        try {
          const ans = await rawExchange(port, req.method, req.bytes, REQUEST_TIMEOUT_MS);
          statuses.set(ans.status, (statuses.get(ans.status) ?? 0) + 1);
          const seen = byRoute.get(req.route) ?? new Map<number, number>();
          byRoute.set(req.route, seen.set(ans.status, (seen.get(ans.status) ?? 0) + 1));
          const problem = problemWith(req, ans);
          if (problem) problems.push(`${req.label}: ${problem}`);
        } catch (err) {
          problems.push(`${req.label}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const counts = (m: Map<number, number>) => [...m].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ');
    console.log(`http fuzz, seed ${SEED}: ${requests.length} requests; ${counts(statuses)}\n${[...byRoute].map(([r, m]) => `  ${r}: ${counts(m)}`).join('\n')}`);
    expect(problems, `seed ${SEED}: ${problems.length} bad answers`).toEqual([]);
    // Some requests got past validation, and most were refused: the fuzz reached the handlers, not only the router.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(requests.length / 10);
    expect(fleet.gateway.process.exitCode).toBeNull();
    for (const h of fleet.hosts) expect(h.process.exitCode).toBeNull();
    expect(await hostPids()).toEqual(pids);
    // No error escaped a handler into the process's last-resort logging either.
    for (const s of [fleet.gateway, ...fleet.hosts]) expect(s.lines.filter((l) => /unhandled|uncaught/i.test(l))).toEqual([]);
  }, 300_000);

  it('findings - requests that once got a 500 or no answer get their 4xx in the JSON shape', async () => {
    const port = Number(new URL(fleet.url).port);
    const send = async (head: string, body = Buffer.alloc(0)) => {
      const method = head.slice(0, head.indexOf(' '));
      const ans = await rawExchange(port, method, Buffer.concat([Buffer.from(`${head}\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body]), REQUEST_TIMEOUT_MS);
      return { status: ans.status, code: ans.headers.get('x-flurry-error'), body: JSON.parse(ans.body.toString()) as { error: { code: string } } };
    };
    // A routing cookie with a stray % (decodeURIComponent threw): the guest answers, routed by the raw value.
    const cookie = await rawExchange(port, 'GET', Buffer.from('GET /svc/fuzz-svc/state HTTP/1.1\r\nHost: x\r\nCookie: flurry-route=%zz\r\n\r\n'), REQUEST_TIMEOUT_MS);
    expect(cookie.status).toBe(200);
    // Refused by Node's HTTP parser: a space in the path, an unknown method, headers over 16 KiB (with a 5 MiB body behind them).
    expect(await send('GET /v1/jobs/a b HTTP/1.1')).toMatchObject({ status: 400, code: 'bad_request', body: { error: { code: 'bad_request' } } });
    expect(await send('FOO /v1/jobs HTTP/1.1')).toMatchObject({ status: 400, code: 'bad_request' });
    expect(await send(`GET /v1/jobs HTTP/1.1\r\nX-Huge: ${'h'.repeat(20_000)}`)).toMatchObject({ status: 431, code: 'payload_too_large' });
    expect(await send(`POST /v1/data/${'b'.repeat(20_000)} HTTP/1.1`, Buffer.alloc(5 * 1024 * 1024, 0x61))).toMatchObject({ status: 431, code: 'payload_too_large' });
  });

  it('afterwards - the same processes serve a function call, a job and a service request', async () => {
    expect(fleet.gateway.process.exitCode).toBeNull();
    for (const h of fleet.hosts) expect(h.process.exitCode).toBeNull();
    // The fuzz may have deleted what it was given by name (that is allowed): deploy and create afresh.
    for (const name of ['counter', 'room']) expect([200, 201]).toContain((await deploy(fleet.url, name, guestProgram(name))).status);
    expect(await json(await api('POST', '/fn/counter'))).toEqual({ count: 1, calls: 1 });
    expect((await runJob(api, { function: 'counter', clones: 2 })).state).toBe('done');
    for (const s of (await json<{ services: { name: string }[] }>(await api('GET', '/v1/services'))).services) {
      await json(await api('DELETE', `/v1/services/${s.name}`));
    }
    await json(await api('POST', '/v1/services', { name: 'after-fuzz', function: 'room', min: 1 }), 201);
    await serviceAnswers('after-fuzz');
  }, 180_000);
});
