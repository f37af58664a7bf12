// `flurry deploy -f` (docs/manifests.md) through the real CLI binary against a
// real fleet (a nats-server, a gateway, one host), and per-function limits as
// the host enforces them. The example manifest (functions/flurry.yaml) is
// applied twice: the second run changes nothing. Then one limit changes and
// only it is updated; a bad manifest and an over-cap limit change nothing.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import { guestProgram } from './helpers/functions.js';
import { json } from './helpers/gateway-api.js';

const API_KEY = 'deploy-manifest-user-key';
/** The hosts' default call limit here: short, so that a call of a function without its own limit ends soon too. */
const HOST_CALL_TIMEOUT_MS = 2500;
/** The gateway's wait for an answer: the cap of a function's timeoutMs. */
const INVOKE_TIMEOUT_MS = 15_000;
const EXAMPLE = join(repoRoot, 'functions', 'flurry.yaml');
const CLI = join(repoRoot, 'sdk', 'dist', 'cli.js');

interface Run { code: number; stdout: string; stderr: string }

describe('deploy manifests', () => {
  let fleet: LocalFleet;
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'flurry-manifest-'));
    fleet = await LocalFleet.start({
      hosts: 1,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_CALL_TIMEOUT_MS: String(HOST_CALL_TIMEOUT_MS), LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_API_KEYS: `${API_KEY}=acme`, FLURRY_INVOKE_TIMEOUT_MS: String(INVOKE_TIMEOUT_MS), LOG_LEVEL: 'warn' },
    });
  });

  afterAll(async () => {
    await fleet?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const headers = { authorization: `Bearer ${API_KEY}` };
  const api = (method: string, path: string, body?: unknown) => fetch(`${fleet.url}${path}`, {
    method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const functionRecord = async (name: string) => (await json<{ function: FunctionRecord }>(await api('GET', `/v1/functions/${name}`))).function;
  const serviceRecord = async (name: string) => (await json<{ service: Record<string, unknown> }>(await api('GET', `/v1/services/${name}`))).service;
  /** What a run may change: every record the example manifest names (the service without its live instances). */
  const records = async () => ({
    echo: await functionRecord('echo'),
    counter: await functionRecord('counter'),
    spin: await functionRecord('spin'),
    tally: { ...(await serviceRecord('tally')), instances: undefined },
  });

  /** The CLI binary as a user runs it, with this fleet's URL and key and no config file of the machine's. */
  function flurry(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, '--url', fleet.url, '--api-key', API_KEY, ...args], {
        cwd: scratch, env: { ...process.env, FLURRY_CONFIG: join(scratch, 'config.yaml'), FLURRY_URL: '', FLURRY_API_KEY: '' }, timeout: 60_000,
      }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    });
  }

  /** A manifest in the scratch folder, its modules named by absolute path. */
  async function manifest(name: string, text: string): Promise<string> {
    const file = join(scratch, name);
    await writeFile(file, text.replaceAll('module: build/', `module: ${join(repoRoot, 'functions', 'build')}/`).replace(/^ *build: .*\n/gm, ''));
    return file;
  }

  it('apply - the example manifest creates its functions (one with limits) and its service', async () => {
    const run = await flurry('deploy', '-f', EXAMPLE);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^function echo +created +digest [0-9a-f]{12}$/);
    expect(lines[2]).toMatch(/^function spin +created +digest [0-9a-f]{12}, limits\.timeoutMs default -> 500, limits\.memoryBytes default -> 67108864, limits\.outputBytes default -> 65536$/);
    expect(lines[3]).toMatch(/^service tally +created +function counter, min 1, max 2$/);
    expect(lines[4]).toBe('changed: 4 created, 0 updated, 0 unchanged');

    for (const name of ['echo', 'counter', 'spin']) {
      const local = createHash('sha256').update(await readFile(join(repoRoot, 'functions', 'build', `${name}.wasm`))).digest('hex');
      expect((await functionRecord(name)).digest).toBe(local);
    }
    expect((await functionRecord('spin')).limits).toEqual({ timeoutMs: 500, memoryBytes: 67108864, outputBytes: 65536 });
    expect((await functionRecord('echo')).limits).toBeUndefined();
    expect(await serviceRecord('tally')).toMatchObject({ function: 'counter', min: 1, max: 2, init: btoa('41') });
    const shown = await flurry('function', 'get', 'spin');
    expect(shown.stdout).toMatch(/^limits {3}timeout 500 ms, memory 64\.0 MiB, output 64\.0 KiB$/m);
  });

  it('apply again - prints that nothing changed and writes nothing', async () => {
    const before = await records();
    const run = await flurry('deploy', '-f', EXAMPLE);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^function echo +unchanged\nfunction counter +unchanged\nfunction spin +unchanged\nservice tally +unchanged\nnothing changed \(4 unchanged\)\n$/);
    const asJson = await flurry('--json', 'deploy', '-f', EXAMPLE);
    expect(asJson.code, asJson.stderr).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual({
      manifest: EXAMPLE, dryRun: false,
      changes: [['function', 'echo'], ['function', 'counter'], ['function', 'spin'], ['service', 'tally']].map(([kind, name]) => ({ kind, name, action: 'unchanged', changes: [] })),
    });
    // Digests, limits and the services' bounds, and updatedAt: no record was written again.
    expect(await records()).toEqual(before);
  });

  it('limits - a call past the function\'s own timeout fails with the timeout error; the same module without limits keeps the default', async () => {
    expect((await upload('spin-default')).status).toBe(201);
    const own = await api('GET', '/fn/spin/');
    expect(own.status).toBe(504);
    expect(await own.json()).toMatchObject({ error: { code: 'timeout', message: 'call exceeded 500 ms' } });
    const fallback = await api('GET', '/fn/spin-default/');
    expect(fallback.status).toBe(504);
    expect(await fallback.json()).toMatchObject({ error: { code: 'timeout', message: `call exceeded ${HOST_CALL_TIMEOUT_MS} ms` } });
  });

  it('limits - a service instance\'s request gets its function\'s timeout too', async () => {
    await json(await api('POST', '/v1/services', { name: 'spinner', function: 'spin', min: 1, max: 1 }), 201);
    const res = await api('GET', '/svc/spinner/');
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/: call exceeded 500 ms; the instance was destroyed with its thread$/) });
    await json(await api('DELETE', '/v1/services/spinner'));
  });

  it('limits - the host enforces a function\'s output limit', async () => {
    const body = 'x'.repeat(2000);
    expect((await api('POST', '/fn/echo/', body)).status).toBe(200);
    await json(await api('PATCH', '/v1/functions/echo', { limits: { outputBytes: 1024 } }));
    const limited = await api('POST', '/fn/echo/', body);
    expect(limited.status).toBe(502);
    expect(await limited.json()).toMatchObject({ error: { code: 'output_limit', message: 'output limit exceeded: more than 1024 bytes' } });
    await json(await api('PATCH', '/v1/functions/echo', { limits: {} }));
    expect((await functionRecord('echo')).limits).toBeUndefined();
  });

  it('change one limit - only that function\'s limits are updated; --dry-run shows it first and changes nothing', async () => {
    const text = (await readFile(EXAMPLE, 'utf8')).replace('timeoutMs: 500 ', 'timeoutMs: 800 ');
    const file = await manifest('one-limit.yaml', text);
    const before = await records();

    const dry = await flurry('deploy', '-f', file, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/\nfunction spin +would update +limits\.timeoutMs 500 -> 800\n/);
    expect(dry.stdout).toMatch(/would change: 0 to create, 1 to update, 3 unchanged\n$/);
    expect(await records()).toEqual(before);

    const run = await flurry('deploy', '-f', file);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^function echo +unchanged\nfunction counter +unchanged\nfunction spin +updated +limits\.timeoutMs 500 -> 800\nservice tally +unchanged\nchanged: 0 created, 1 updated, 3 unchanged\n$/);
    const after = await records();
    expect(after.spin.limits).toEqual({ ...before.spin.limits, timeoutMs: 800 });
    expect(after.spin.digest).toBe(before.spin.digest);
    expect({ ...after, spin: undefined }).toEqual({ ...before, spin: undefined });
  });

  it('a bad manifest - refused naming the path and line; nothing is applied', async () => {
    const text = (await readFile(EXAMPLE, 'utf8')).replace('timeoutMs: 500 ', 'timeout: 300 ')
      .replace('functions:\n', 'functions:\n  fresh:\n    module: build/echo.wasm\n');
    const file = await manifest('bad.yaml', text);
    const before = await records();
    const run = await flurry('deploy', '-f', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^error: usage: ${file.replaceAll('.', '\\.')}:\\d+: functions\\.spin\\.limits\\.timeout: unknown key\\n$`));
    expect(run.stdout).toBe('');
    expect(await records()).toEqual(before);
    expect((await api('GET', '/v1/functions/fresh')).status).toBe(404);
  });

  const upload = (name: string, program = 'spin') => fetch(`${fleet.url}/v1/functions/${name}`, {
    method: 'PUT', body: guestProgram(program) as Uint8Array<ArrayBuffer>, headers: { ...headers, 'content-type': 'application/wasm' },
  });

  it('redeploy - a new upload of a function keeps its limits; one deleted and deployed again has none', async () => {
    const before = await functionRecord('spin');
    expect((await upload('spin')).status).toBe(200);
    expect((await functionRecord('spin')).limits).toEqual(before.limits);
    await json(await api('PATCH', '/v1/functions/spin-default', { limits: { timeoutMs: 700 } }));
    await json(await api('DELETE', '/v1/functions/spin-default'));
    expect((await upload('spin-default')).status).toBe(201);
    expect((await functionRecord('spin-default')).limits).toBeUndefined();
  });

  it('memory limit - a module declaring more is refused at deploy, and a limit below the module\'s declared memory', async () => {
    // grow declares 512 pages (32 MiB), echo 1024 (64 MiB).
    expect((await upload('small', 'grow')).status).toBe(201);
    await json(await api('PATCH', '/v1/functions/small', { limits: { memoryBytes: 32 * 1024 * 1024 } }));
    const bigger = await upload('small', 'echo');
    expect(bigger.status).toBe(400);
    expect(((await bigger.json()) as { error: { message: string } }).error.message).toMatch(/^function "small": its module declares a memory maximum of 67108864 bytes \(1024 pages\), above its limits\.memoryBytes 33554432/);
    const lower = await api('PATCH', '/v1/functions/small', { limits: { memoryBytes: 16 * 1024 * 1024 } });
    expect(lower.status).toBe(400);
    expect((await functionRecord('small')).limits).toEqual({ memoryBytes: 32 * 1024 * 1024 });
  });

  it('an over-cap limit - refused with 400 naming the cap; the function keeps its limits', async () => {
    const before = await functionRecord('spin');
    const res = await api('PATCH', '/v1/functions/spin', { limits: { timeoutMs: INVOKE_TIMEOUT_MS + 1 } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'bad_request', message: `limits.timeoutMs ${INVOKE_TIMEOUT_MS + 1} exceeds the fleet's cap of ${INVOKE_TIMEOUT_MS} (FLURRY_INVOKE_TIMEOUT_MS)` } });
    const unknown = await api('PATCH', '/v1/functions/spin', { limits: { timeout: 5 } });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ error: { code: 'bad_request', message: 'unknown field "limits.timeout"' } });
    // Declared once: the API's document has the route and its body.
    const document = await json<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(await fetch(`${fleet.url}/openapi.json`));
    expect(document.paths['/v1/functions/{name}']?.patch?.requestBody).toBeDefined();
    expect(await functionRecord('spin')).toEqual(before);
  });
});
