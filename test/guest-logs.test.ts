// Guest logs for their owner, against a real fleet (nats-server with the
// shipped permissions, a gateway with API keys, one host): what `pattern`
// logs in a call and in each clone of a job, what a call that traps logged
// before it failed, and what a service instance
// logs, is read back through GET /v1/functions/:name/logs, /v1/jobs/:id/logs
// and /v1/services/:name/logs, through the CLI (`flurry logs`,
// `flurry job logs`, `flurry service logs`, run as child processes), and followed
// (`flurry logs --follow` prints a line of a later call). Another tenant
// reads none of it (404, or its own empty logs), a bad query gets a 400 that
// says what is wrong, and batches in the stream that are not batches, or
// name another tenant, are dropped when read.
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { encode, GuestLogSubjects, newApiKey, type GuestLogBatch } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import { guestProgram } from './helpers/functions.js';
import { wat } from './helpers/wat.js';
import { json, until, type Api } from './helpers/gateway-api.js';
import { b64, finishedJob, submitJob } from './helpers/jobs.js';

const KEYS = { alice: newApiKey(), bob: newApiKey(), admin: newApiKey() };
const CLI = join(repoRoot, 'sdk', 'dist', 'cli.js');

interface Line { at: number; level: string; message: string; requestId: string; hostId: string; function?: string; jobId?: string; clone?: number | 'reduce' }

let fleet: LocalFleet;

function as(who: keyof typeof KEYS): Api {
  return (method, path, body, headers = {}) => fetch(`${fleet.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEYS[who]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
  });
}
const alice = as('alice');
const bob = as('bob');

async function linesOf(api: Api, path: string): Promise<Line[]> {
  return (await json<{ lines: Line[] }>(await api('GET', path))).lines;
}

/** Polls the route until a line with `message` is there (hosts publish after the reply): the lines then. */
function linesWith(api: Api, path: string, ...messages: string[]): Promise<Line[]> {
  let last: Line[] = [];
  return until(`${messages.join(', ')} in ${path}`, async () => {
    last = await linesOf(api, path);
    return messages.every((m) => last.some((l) => l.message === m)) ? last : undefined;
  }, 15_000, async () => `it had ${JSON.stringify(last.map((l) => l.message))}`);
}

/** Calls alice's pattern as clone `index` of `count`: it logs `pattern: clone <index>/<count> ok`. */
async function callPattern(index: number, count: number): Promise<{ requestId: string; hostId: string }> {
  const res = await alice('GET', `/fn/pattern/?index=${index}&count=${count}&verify=none`);
  expect(res.status, await res.clone().text()).toBe(200);
  return { requestId: res.headers.get('x-flurry-request-id')!, hostId: res.headers.get('x-flurry-host')! };
}

/** The CLI as alice: the gateway and key on the command line, and a config file of its own (none of the user's contexts). */
const cliArgs = (args: string[]) => [CLI, '--url', fleet.url, '--api-key', KEYS.alice, ...args];
const cliEnv = () => ({ PATH: process.env.PATH, FLURRY_CONFIG: join(fleet.dataDir, 'cli-config.yaml') });
const cli = (args: string[]) => promisify(execFile)(process.execPath, cliArgs(args), { env: cliEnv(), timeout: 15_000 });

/** A service guest that logs one line per request. */
const chatter = wat(`(module
  (import "flurry" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "chatter: a request")
  (func (export "handle") (result i32) (call $log (i32.const 1) (i32.const 0) (i32.const 18)) (i32.const 0)))`);

/** A function that logs an error, then traps. */
const failing = wat(`(module
  (import "flurry" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "about to fail")
  (func (export "handle") (result i32) (call $log (i32.const 3) (i32.const 0) (i32.const 13)) unreachable))`);

let instanceId: string;
let jobId: string;
let call: { requestId: string; hostId: string };

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 1,
    hostEnv: { FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' },
    gatewayEnv: { FLURRY_API_KEYS: `${KEYS.alice}=alice,${KEYS.bob}=bob,${KEYS.admin}=ops:admin`, FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn' },
    apiKey: KEYS.admin,
  });
  await json(await alice('PUT', '/v1/functions/pattern', guestProgram('pattern')), 201);
  // Bob's function of the same name: his logs of it must not be alice's.
  await json(await bob('PUT', '/v1/functions/pattern', guestProgram('pattern')), 201);
  await json(await alice('PUT', '/v1/functions/failing', failing), 201);
  await json(await alice('PUT', '/v1/functions/chatter', chatter), 201);
  await json(await alice('POST', '/v1/services', { name: 'chat', function: 'chatter', min: 1 }), 201);
  // Held until the instance is up.
  expect((await alice('POST', '/svc/chat/hi', 'x')).status).toBe(200);
  instanceId = (await json<{ service: { instances: { id: string }[] } }>(await alice('GET', '/v1/services/chat'))).service.instances[0].id;
  call = await callPattern(1, 4);
  jobId = (await submitJob(alice, { function: 'pattern', clones: 3, init: b64({ mib: 1 }), reduce: false })).id;
  expect((await finishedJob(alice, jobId)).state).toBe('done');
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('guest logs', () => {
  it("function logs - a call's lines, with its function, request id and host, after its warm parent's init", async () => {
    const lines = await linesWith(alice, '/v1/functions/pattern/logs', 'pattern: clone 1/4 ok');
    const line = lines.find((l) => l.message === 'pattern: clone 1/4 ok')!;
    expect(line).toMatchObject({ level: 'info', function: 'pattern', requestId: call.requestId, hostId: call.hostId });
    expect(Math.abs(line.at - Date.now())).toBeLessThan(60_000);
    // The warm parent's init (16 MiB, pattern's default) logged first.
    expect(lines[0].message).toMatch(/^pattern: wrote 16 MiB in \d+ ms$/);
    expect((await linesOf(alice, '/v1/functions/pattern/logs?limit=1')).map((l) => l.message)).toEqual(['pattern: clone 1/4 ok']);
    expect(await linesOf(alice, `/v1/functions/pattern/logs?since=${Date.now() + 60_000}`)).toEqual([]);
  });

  it("a failed call - its lines are kept too, with the call's request id", async () => {
    const res = await alice('POST', '/fn/failing/', 'x');
    expect(res.status).toBe(502);
    expect(res.headers.get('x-flurry-error')).toBe('guest_trap');
    const lines = await linesWith(alice, '/v1/functions/failing/logs', 'about to fail');
    expect(lines).toEqual([expect.objectContaining({ level: 'error', function: 'failing', requestId: res.headers.get('x-flurry-request-id') })]);
  });

  it("job logs - every clone's line, or one clone's", async () => {
    const expected = [0, 1, 2].map((i) => `pattern: clone ${i}/3 ok`);
    const lines = await linesWith(alice, `/v1/jobs/${jobId}/logs`, ...expected);
    expect(lines.map((l) => [l.clone, l.message]).sort()).toEqual(expected.map((m, i) => [i, m]));
    for (const l of lines) expect(l).toMatchObject({ jobId, level: 'info', hostId: call.hostId });
    expect((await linesOf(alice, `/v1/jobs/${jobId}/logs?clone=1`)).map((l) => l.message)).toEqual(['pattern: clone 1/3 ok']);
    expect(await linesOf(alice, `/v1/jobs/${jobId}/logs?clone=reduce`)).toEqual([]);
  });

  it("service logs - an instance's lines, naming the service and the instance", async () => {
    const lines = await linesWith(alice, '/v1/services/chat/logs', 'chatter: a request');
    expect(lines).toEqual([expect.objectContaining({ level: 'info', service: 'chat', instanceId, message: 'chatter: a request' })]);
  });

  it('CLI - flurry logs, flurry job logs and flurry service logs print the lines', async () => {
    await linesWith(alice, '/v1/functions/pattern/logs', 'pattern: clone 1/4 ok');
    const { stdout } = await cli(['logs', 'pattern']);
    expect(stdout).toMatch(new RegExp(`^\\S+Z info  ${call.requestId}  pattern: clone 1/4 ok$`, 'm'));
    const job = await cli(['job', 'logs', jobId, '--clone', '2']);
    expect(job.stdout.trim()).toMatch(/^\S+Z info  clone 2  pattern: clone 2\/3 ok$/);
    const asJson = JSON.parse((await cli(['--json', 'job', 'logs', jobId])).stdout) as Line[];
    expect(asJson.map((l) => l.clone).sort()).toEqual([0, 1, 2]);
    expect((await cli(['service', 'logs', 'chat'])).stdout.trim()).toMatch(new RegExp(`^\\S+Z info  ${instanceId}  chatter: a request$`));
  });

  it('CLI - flurry logs --follow prints a line of a later call', async () => {
    const child = spawn(process.execPath, cliArgs(['logs', 'pattern', '--follow', '--limit', '1']), { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const state = async () => `stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}, exit ${child.exitCode}`;
      // The backlog (its last line) first: the follower is connected.
      await until('the backlog', async () => (out.includes('pattern: clone') ? true : child.exitCode !== null ? false : undefined), 15_000, state);
      expect(child.exitCode).toBeNull();
      await callPattern(3, 4);
      await until('the later call\'s line', async () => (out.includes('pattern: clone 3/4 ok') ? true : undefined), 15_000, state);
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });

  it("another tenant - reads none of alice's lines: 404 for her job and service, his own empty logs for his function", async () => {
    for (const path of [`/v1/jobs/${jobId}/logs`, `/v1/jobs/${jobId}/logs?follow=true`, `/v1/jobs/${jobId}/logs?clone=0`, '/v1/functions/nothing/logs', '/v1/services/chat/logs']) {
      const res = await bob('GET', path);
      expect(res.status, path).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    }
    expect(await linesOf(bob, '/v1/functions/pattern/logs')).toEqual([]);
    expect((await bob('GET', '/v1/functions/pattern/logs')).status).toBe(200);
    // Without a key: nothing at all.
    expect((await fetch(`${fleet.url}/v1/functions/pattern/logs`)).status).toBe(401);
  });

  it('bad query - 400 saying what is wrong', async () => {
    const cases: [string, string][] = [
      ['/v1/functions/pattern/logs?limit=0', 'limit must be a whole number of lines from 1 to 10000'],
      ['/v1/functions/pattern/logs?since=yesterday', 'since must be a time'],
      ['/v1/functions/pattern/logs?follow=maybe', 'follow must be true or false'],
      ['/v1/functions/pattern/logs?clone=1', 'unknown query parameter "clone"'],
      [`/v1/jobs/${jobId}/logs?clone=3`, "clone must be below the job's 3 clones"],
      [`/v1/jobs/${jobId}/logs?clone=first`, "clone must be a clone's index"],
      [`/v1/jobs/${jobId}/logs?tail=3`, 'unknown query parameter "tail"'],
    ];
    for (const [path, message] of cases) {
      const res = await alice('GET', path);
      expect(res.status, path).toBe(400);
      const body = await res.json();
      expect(body.error.code, path).toBe('bad_request');
      expect(body.error.message, path).toContain(message);
    }
  });

  it('the API document - declares the routes, their queries and both answers', async () => {
    const doc = await json<{ paths: Record<string, { get?: { parameters?: { name: string }[]; responses: Record<string, { content?: Record<string, unknown> }> } }> }>(await fetch(`${fleet.url}/openapi.json`));
    for (const [path, params] of [
      ['/v1/functions/{name}/logs', ['name', 'limit', 'since', 'follow']], ['/v1/jobs/{id}/logs', ['id', 'limit', 'since', 'follow', 'clone']],
      ['/v1/services/{name}/logs', ['name', 'limit', 'since', 'follow']],
    ] as const) {
      const get = doc.paths[path]?.get;
      expect(get, path).toBeDefined();
      expect(get!.parameters!.map((p) => p.name).sort()).toEqual([...params].sort());
      expect(Object.keys(get!.responses['200'].content!).sort()).toEqual(['application/json', 'text/event-stream']);
    }
  });

  it('stored batches that are not batches, or name another tenant, are dropped when read and counted', async () => {
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const js = jetstream(nc);
      const subject = GuestLogSubjects.function('alice', 'pattern');
      const forged: GuestLogBatch = { at: Date.now(), tenant: 'bob', source: { kind: 'function', name: 'pattern' }, requestId: 'r', hostId: 'h', lines: [{ level: 'error', message: 'forged' }], dropped: 0 };
      const health = async () => (await json<{ rejectedMessages: Record<string, number> }>(await fetch(`${fleet.url}/healthz`))).rejectedMessages.GuestLogBatch ?? 0;
      const before = await health();
      await js.publish(subject, new Uint8Array([0xc1, 1, 2]));
      await js.publish(subject, encode({ ...forged, tenant: 'alice', lines: 'not lines' }));
      await js.publish(subject, encode(forged));
      const lines = await linesOf(alice, '/v1/functions/pattern/logs');
      expect(lines.map((l) => l.message)).not.toContain('forged');
      expect(lines.map((l) => l.message)).toContain('pattern: clone 1/4 ok');
      expect(await health()).toBe(before + 2);
    } finally {
      await nc.close();
    }
  });
});
