/** The `flurry` CLI, run as `node sdk/dist/cli.js` against a stub gateway (build first: `npx tsc -b sdk`). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_WASM_MODULE, startStubGateway, type StubGateway } from './testing/stub-gateway.js';
import { unusedPort } from './testing/unused-port.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let gateway: StubGateway;
let scratch: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -b sdk\` before the tests`);
  gateway = await startStubGateway();
  scratch = await mkdtemp(join(tmpdir(), 'flurry-cli-'));
});
afterAll(async () => {
  await gateway.close();
  await rm(scratch, { recursive: true, force: true });
});

interface CliRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI asynchronously: the stub answers from this same process. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      // A config file of the test's own: the user's contexts must not decide where a test's requests go.
      env: { PATH: process.env.PATH, FLURRY_URL: gateway.url, FLURRY_CONFIG: join(scratch, 'no-contexts.yaml'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }));
  });
}

function lines(run: CliRun): string[] {
  return run.stdout.toString().trimEnd().split('\n');
}

async function deployFixture(name: string): Promise<void> {
  const file = join(scratch, `${name}.wasm`);
  await writeFile(file, EMPTY_WASM_MODULE);
  expect((await cli(['deploy', name, file])).code).toBe(0);
}

describe('cli', () => {
  it('cli - deploy uploads the file and prints a one-line summary', async () => {
    const file = join(scratch, 'hello.wasm');
    await writeFile(file, EMPTY_WASM_MODULE);
    const run = await cli(['deploy', 'hello', file]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.toString()).toMatch(/^deployed hello {2}digest [0-9a-f]{12} {2}8 B {2}exports handle,init\n$/);
  });

  it('cli - functions prints an aligned table', async () => {
    await deployFixture('table-a');
    await deployFixture('a-much-longer-name');
    const run = await cli(['functions']);
    expect(run.code).toBe(0);
    const [header, ...rows] = lines(run);
    expect(header.split(/\s{2,}/)).toEqual(['NAME', 'DIGEST', 'SIZE', 'MEMORY', 'EXPORTS', 'UPDATED']);
    const row = rows.find((line) => line.startsWith('table-a '));
    expect(row).toMatch(/^table-a +[0-9a-f]{12} +8 B +64\.0 KiB \/ 1\.0 MiB +handle,init +(\d+)s ago$/);
    // The stub dates updates 5 s back; a loaded machine may take some seconds to start the CLI.
    expect(Number(/(\d+)s ago$/.exec(row!)![1])).toBeGreaterThanOrEqual(5);
    // Every row's DIGEST starts where the header's does.
    const digestColumn = header.indexOf('DIGEST');
    for (const line of rows) expect(line.slice(digestColumn)).toMatch(/^[0-9a-f]{12} /);
  });

  it('cli - functions --json prints exactly one JSON document', async () => {
    await deployFixture('json-listed');
    const run = await cli(['functions', '--json']);
    expect(run.code).toBe(0);
    const functions = JSON.parse(run.stdout.toString()) as { name: string }[];
    expect(functions.map((fn) => fn.name)).toContain('json-listed');
  });

  it('cli - function get shows one function as labelled fields, or JSON', async () => {
    await deployFixture('shown');
    const run = await cli(['function', 'get', 'shown']);
    expect(run.code).toBe(0);
    expect(lines(run)[0]).toBe('name     shown');
    expect(run.stdout.toString()).toMatch(/^digest {3}[0-9a-f]{64}$/m);
    expect(run.stdout.toString()).toMatch(/^limits {3}the fleet's defaults$/m);
    const json = await cli(['--json', 'function', 'get', 'shown']);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ name: 'shown', memory: { initialPages: 1, maximumPages: 16 } });
  });

  it('cli - function rm removes a function; delete, as before the verbs were grouped, too', async () => {
    await deployFixture('doomed');
    const run = await cli(['function', 'rm', 'doomed']);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout.toString()).toBe('deleted doomed\n');
    expect((await cli(['function', 'get', 'doomed'])).code).toBe(1);
    await deployFixture('doomed-too');
    expect((await cli(['delete', 'doomed-too'])).stdout.toString()).toBe('deleted doomed-too\n');
    expect((await cli(['function', 'get', 'doomed-too'])).code).toBe(1);
  });

  it('cli - every resource has ls, the plural alone lists: function ls = functions, host ls = hosts', async () => {
    await deployFixture('listed-twice');
    const [viaLs, viaPlural] = await Promise.all([cli(['--json', 'function', 'ls']), cli(['--json', 'functions'])]);
    expect(JSON.parse(viaLs.stdout.toString())).toEqual(JSON.parse(viaPlural.stdout.toString()));
    const hosts = await cli(['--json', 'host', 'ls']);
    expect(JSON.parse(hosts.stdout.toString()).map((host: { id: string }) => host.id)).toEqual(['host-a', 'host-b']);
  });

  it('cli - host get shows one host; an unknown one is not_found', async () => {
    const run = await cli(['host', 'get', 'host-b']);
    expect(run.code).toBe(0);
    expect(run.stdout.toString()).toMatch(/^state +drained: consolidate: its 1 lightly loaded instance\(s\) fit on host-a \(releasable\)$/m);
    expect(run.stdout.toString()).toMatch(/^slots +0 of 2 running$/m);
    expect(run.stdout.toString()).toMatch(/^machine +2 cores, 4\.0 GiB$/m);
    expect(JSON.parse((await cli(['--json', 'host', 'get', 'host-a'])).stdout.toString())).toMatchObject({ id: 'host-a', hostname: 'alpha' });
    expect(await cli(['host', 'get', 'host-zz'])).toMatchObject({ code: 1, stderr: 'error: not_found: host-zz is not a live host\n' });
  });

  it('cli - hosts prints a table of id, pid, slots, running, warm, pager, state, instances, releasable and heartbeat age', async () => {
    const run = await cli(['hosts']);
    expect(run.code).toBe(0);
    const [header, first, second] = lines(run);
    expect(header.split(/\s{2,}/)).toEqual(['ID', 'HOSTNAME', 'PID', 'SLOTS', 'RUNNING', 'WARM', 'PAGER', 'STATE', 'INSTANCES', 'RELEASABLE', 'HEARTBEAT']);
    expect(first.split(/\s+/)).toEqual(['host-a', 'alpha', '4242', '8', '3', '1', 'userfaultfd', 'active', '1', 'no', expect.stringMatching(/^\d+s$/), 'ago']); // (STUB_HOSTS are dated when the stub module loads)
    expect(second.split(/\s+/).slice(0, 10)).toEqual(['host-b', 'beta', '77', '2', '0', '0', 'portable', 'drained', '0', 'yes']);
    // PID is right-aligned: both values end in the same column.
    expect(first.indexOf('4242') + 4).toBe(second.indexOf(' 77') + 3);
  });

  it('cli - hosts --json prints the host records', async () => {
    const run = await cli(['hosts', '--json']);
    expect(JSON.parse(run.stdout.toString()).map((host: { id: string }) => host.id)).toEqual(['host-a', 'host-b']);
  });

  it('cli - invoke prints the raw body and sends --data, --method, --path and --header', async () => {
    const run = await cli(['invoke', 'echo', '--data', 'hi', '--method', 'put', '--path', '/x?y=1', '--header', 'X-User: ada']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ method: 'PUT', path: '/x', query: 'y=1', body: 'hi', headers: { 'x-user': 'ada' } });
  });

  it('cli - invoke --data-file sends the file bytes with POST', async () => {
    const file = join(scratch, 'input.txt');
    await writeFile(file, 'from a file');
    const run = await cli(['invoke', 'echo', '--data-file', file]);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ method: 'POST', body: 'from a file' });
  });

  it('cli - invoke --json prints status, headers, body and where it ran; binary bodies as base64', async () => {
    const run = await cli(['--json', 'invoke', 'binary']);
    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout.toString());
    expect(document).toMatchObject({ status: 200, body: '/wCA', bodyEncoding: 'base64', requestId: 'req-1', hostId: 'host-a', durationMs: 12 });
    expect(document.headers['content-type']).toBe('application/octet-stream');
    const text = JSON.parse((await cli(['--json', 'invoke', 'teapot'])).stdout.toString());
    expect(text).toMatchObject({ status: 418, bodyEncoding: 'utf8', body: '{"error":{"code":"teapot","message":"short and stout"}}' });
  });

  it("cli - a guest's own error status is not a CLI error: body on stdout, status noted on stderr", async () => {
    const run = await cli(['invoke', 'teapot']);
    expect(run.code).toBe(0);
    expect(run.stdout.toString()).toContain('short and stout');
    expect(run.stderr).toBe('flurry: teapot answered HTTP 418\n');
  });

  it('cli - a platform error prints error: <code>: <message> and exits 1', async () => {
    const run = await cli(['invoke', 'busy'], { FLURRY_REQUEST_RETRIES: '0' });
    expect(run).toMatchObject({ code: 1, stderr: 'error: no_capacity: no host has a free slot\n' });
    expect(run.stdout.length).toBe(0);
  });

  it('cli - an unreachable gateway prints a connection error and exits 1', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const run = await cli(['hosts', '--url', url, '--request-retries', '0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`error: connection: GET ${url}/v1/hosts: connect ECONNREFUSED ${url.slice('http://'.length)}\n`);
  });

  it('cli - usage errors exit 2', async () => {
    expect((await cli(['deploy', 'only-a-name'])).code).toBe(2);
    expect((await cli(['invoke', 'echo', '--data', 'a', '--data-file', 'b'])).code).toBe(2);
    const badHeader = await cli(['invoke', 'echo', '--header', 'no-colon']);
    expect(badHeader).toMatchObject({ code: 2, stderr: "error: usage: --header: expected 'name: value', got 'no-colon'\n" });
    const missingFile = await cli(['deploy', 'x', join(scratch, 'absent.wasm')]);
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toMatch(/^error: usage: cannot read .*absent\.wasm/);
  });

  it('cli - the API key comes from --api-key or FLURRY_API_KEY', async () => {
    await cli(['hosts', '--api-key', 'from-flag']);
    expect(gateway.requests[gateway.requests.length - 1].headers.authorization).toBe('Bearer from-flag');
    await cli(['hosts'], { FLURRY_API_KEY: 'from-env' });
    expect(gateway.requests[gateway.requests.length - 1].headers.authorization).toBe('Bearer from-env');
  });

  it('cli - without a key, a gateway on this machine gets the local fleet\'s admin key from its state folder', async () => {
    const state = join(scratch, 'fleet-state');
    await mkdir(state, { recursive: true });
    await writeFile(join(state, 'admin.key'), 'flk_local-admin\n');
    await cli(['hosts'], { FLURRY_DATA_DIR: state });
    expect(gateway.requests[gateway.requests.length - 1].headers.authorization).toBe('Bearer flk_local-admin');
    await cli(['hosts', '--api-key', 'from-flag'], { FLURRY_DATA_DIR: state });
    expect(gateway.requests[gateway.requests.length - 1].headers.authorization).toBe('Bearer from-flag');
  });
});

describe('cli context', () => {
  const configFile = () => join(scratch, 'contexts', 'config.yaml');
  const withConfig = (env: Record<string, string> = {}) => ({ FLURRY_CONFIG: configFile(), ...env });
  const lastAuthorization = () => gateway.requests[gateway.requests.length - 1].headers.authorization;

  it('cli context - add writes the file 0600, the first context becomes current; commands then use its URL and key', async () => {
    const added = await cli(['context', 'add', 'stub', '--url', gateway.url, '--key', 'flk_stub-key'], withConfig());
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout.toString()).toBe(`added context stub (current) in ${configFile()}\n`);
    expect((await stat(configFile())).mode & 0o777).toBe(0o600);
    // No FLURRY_URL: the context's URL and key.
    const hosts = await cli(['hosts'], withConfig({ FLURRY_URL: '' }));
    expect(hosts.code).toBe(0);
    expect(lastAuthorization()).toBe('Bearer flk_stub-key');
  });

  it('cli context - use switches, ls marks the current one, rm removes; the key is never printed whole', async () => {
    expect((await cli(['context', 'add', 'stub', '--url', gateway.url, '--key', 'flk_stub-key'], withConfig())).code).toBe(0);
    const keyFile = join(scratch, 'other.key');
    await writeFile(keyFile, 'flk_other-key-0123\n');
    const second = await cli(['context', 'add', 'other', '--url', 'https://flurry.example.com', '--key-file', keyFile], withConfig());
    expect(second.stdout.toString()).toBe(`added context other in ${configFile()}\n`);
    expect((await cli(['context', 'use', 'other'], withConfig())).stdout.toString()).toBe('using context other\n');
    const [header, ...rows] = lines(await cli(['context', 'ls'], withConfig()));
    expect(header.split(/\s{2,}/)).toEqual(['CURRENT', 'NAME', 'URL', 'KEY']);
    expect(rows.map((row) => row.trim().split(/\s+/))).toEqual([
      ['stub', gateway.url, 'flk_st…'],
      ['*', 'other', 'https://flurry.example.com', 'flk_othe…'],
    ]);
    expect(await readFile(configFile(), 'utf8')).toContain('flk_other-key-0123');
    const json = JSON.parse((await cli(['--json', 'context', 'ls'], withConfig())).stdout.toString());
    expect(json).toContainEqual({ name: 'other', url: 'https://flurry.example.com', hasKey: true, current: true });
    expect(JSON.stringify(json)).not.toContain('flk_other-key');
    expect((await cli(['context', 'rm', 'other'], withConfig())).code).toBe(0);
    expect(await cli(['context', 'get'], withConfig())).toMatchObject({ code: 2, stderr: 'error: usage: no current context: name one, or flurry context use NAME\n' });
  });

  it('cli context - precedence: flags, then the environment, then --context or the current context, then the local fleet key', async () => {
    expect((await cli(['context', 'add', 'stub', '--url', gateway.url, '--key', 'flk_context-key'], withConfig())).code).toBe(0);
    expect((await cli(['context', 'use', 'stub'], withConfig())).code).toBe(0);
    await cli(['hosts', '--api-key', 'flk_flag'], withConfig({ FLURRY_API_KEY: 'flk_env' }));
    expect(lastAuthorization()).toBe('Bearer flk_flag');
    await cli(['hosts'], withConfig({ FLURRY_API_KEY: 'flk_env' }));
    expect(lastAuthorization()).toBe('Bearer flk_env');
    await cli(['hosts'], withConfig());
    expect(lastAuthorization()).toBe('Bearer flk_context-key');
    // Another gateway named by the environment never gets the context's key: it gets the local fleet's (loopback).
    const state = join(scratch, 'context-fleet-state');
    await mkdir(state, { recursive: true });
    await writeFile(join(state, 'admin.key'), 'flk_local-admin\n');
    const other = await startStubGateway();
    try {
      await cli(['hosts'], withConfig({ FLURRY_URL: other.url, FLURRY_DATA_DIR: state }));
      expect(other.requests.at(-1)?.headers.authorization).toBe('Bearer flk_local-admin');
      // --context picks a context for one command; an unknown one is a usage error.
      expect((await cli(['context', 'add', 'other', '--url', other.url, '--key', 'flk_other'], withConfig())).code).toBe(0);
      await cli(['--context', 'other', 'hosts'], withConfig({ FLURRY_URL: '' }));
      expect(other.requests.at(-1)?.headers.authorization).toBe('Bearer flk_other');
    } finally {
      await other.close();
    }
    expect(await cli(['--context', 'nope', 'hosts'], withConfig())).toMatchObject({ code: 2, stderr: 'error: usage: --context: no context "nope" (defined: stub, other)\n' });
  });

  it('cli context - a bad config file or a bad context is refused with exit 2 and says what is wrong', async () => {
    const bad = join(scratch, 'bad-config.yaml');
    await writeFile(bad, 'current: x\ncontexts:\n  x: { url: http://127.0.0.1:1, token: abc }\n');
    expect(await cli(['hosts'], { FLURRY_CONFIG: bad })).toMatchObject({ code: 2, stderr: `error: config: ${bad}: context "x": unknown field "token"\n` });
    await writeFile(bad, 'contexts: [1, 2]\n');
    expect((await cli(['hosts'], { FLURRY_CONFIG: bad })).stderr).toBe(`error: config: ${bad}: "contexts" must be a mapping of names to { url, key }\n`);
    expect((await cli(['context', 'add', 'ftp', '--url', 'ftp://example.com'], withConfig())).stderr).toBe('error: config: context "ftp": url must be an http or https URL, got "ftp://example.com"\n');
    expect((await cli(['context', 'add', 'no/slash', '--url', gateway.url], withConfig())).code).toBe(2);
    // FLURRY_URL (set for every run here) is for one session: a saved context needs --url itself.
    expect(await cli(['context', 'add', 'from-env'], withConfig())).toMatchObject({ code: 2, stderr: 'error: usage: context add: --url URL is required\n' });
    expect((await cli(['context', 'use', 'absent'], withConfig())).stderr).toMatch(/^error: config: no context "absent" \(defined: /);
  });
});

describe('cli service', () => {
  function lastRequest() {
    return gateway.requests[gateway.requests.length - 1];
  }
  function sentJson(): unknown {
    return JSON.parse(lastRequest().body.toString('utf8'));
  }

  it('cli service - create sends the function, the --init file as base64 and the bounds; prints one line', async () => {
    const init = join(scratch, 'room-init.json');
    await writeFile(init, '{"ballastMiB":8}');
    const run = await cli(['service', 'create', 'chat', '--function', 'room', '--init', init, '--min', '2', '--max', '8', '--target', '4']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/services' });
    expect(sentJson()).toEqual({ name: 'chat', function: 'room', init: btoa('{"ballastMiB":8}'), min: 2, max: 8, targetConcurrency: 4 });
    expect(run.stdout.toString()).toBe('created chat  function room  min 2  max 8  target 4  2 instances\n');
  });

  it('cli service - create --init-data names uploaded data as the parent\'s init input', async () => {
    expect((await cli(['service', 'create', 'on-upload', '--function', 'room', '--init-data', 'room-init.json'])).code).toBe(0);
    expect(sentJson()).toEqual({ name: 'on-upload', function: 'room', initData: 'room-init.json' });
  });

  it('cli service - create without --function is a usage error; a refused create prints the error and exits 1', async () => {
    expect((await cli(['service', 'create', 'nofn'])).code).toBe(2);
    expect((await cli(['service', 'create', 'neg', '--function', 'room', '--min', '-1'])).code).toBe(2);
    const run = await cli(['service', 'create', 'orphan', '--function', 'missing']);
    expect(run).toMatchObject({ code: 1, stderr: 'error: not_found: cannot create service "orphan": function "missing" is not deployed\n' });
    expect(run.stdout.length).toBe(0);
  });

  it('cli service - ls prints a table, --json the records', async () => {
    expect((await cli(['service', 'create', 'listed', '--function', 'room', '--max', '3'])).code).toBe(0);
    const run = await cli(['service', 'ls']);
    expect(run.code).toBe(0);
    const [header, ...rows] = lines(run);
    expect(header.split(/\s{2,}/)).toEqual(['NAME', 'FUNCTION', 'DIGEST', 'INSTANCES', 'MIN', 'MAX', 'TARGET', 'CREATED']);
    expect(rows.find((row) => row.startsWith('listed '))?.split(/\s+/)).toEqual(['listed', 'room', 'cd'.repeat(6), '1', '1', '3', '8', expect.stringMatching(/^\d+s$/), 'ago']);
    const json = await cli(['--json', 'service', 'ls']);
    expect((JSON.parse(json.stdout.toString()) as { name: string }[]).map((svc) => svc.name)).toContain('listed');
  });

  it('cli service - get prints the settings and a row per instance', async () => {
    expect((await cli(['service', 'create', 'shown-svc', '--function', 'room', '--min', '2'])).code).toBe(0);
    const run = await cli(['service', 'get', 'shown-svc']);
    expect(run.code).toBe(0);
    const text = run.stdout.toString();
    expect(text).toMatch(/^scale +min 2, max 2, target 8 in flight per instance$/m);
    expect(text).toMatch(/^init +none$/m);
    const table = text.slice(text.indexOf('INSTANCE '));
    const [header, ...rows] = table.trimEnd().split('\n');
    expect(header.split(/\s{2,}/)).toEqual(['INSTANCE', 'HOST', 'IN FLIGHT', 'AGE', 'MIGRATING']);
    expect(rows.map((row) => row.split(/\s+/).slice(0, 3))).toEqual([['shown-svc-0', 'host-a', '0'], ['shown-svc-1', 'host-a', '0']]);
    const missing = await cli(['service', 'get', 'nope']);
    expect(missing).toMatchObject({ code: 1, stderr: 'error: not_found: service "nope" does not exist\n' });
  });

  it('cli service - scale sends only the given bounds; scale without any is a usage error', async () => {
    expect((await cli(['service', 'create', 'grows', '--function', 'room'])).code).toBe(0);
    const run = await cli(['service', 'scale', 'grows', '--min', '3', '--target', '2']);
    expect(run.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: 'PATCH', url: '/v1/services/grows' });
    expect(sentJson()).toEqual({ min: 3, targetConcurrency: 2 });
    expect(run.stdout.toString()).toBe('scaled grows  function room  min 3  max 3  target 2  3 instances\n');
    const none = await cli(['service', 'scale', 'grows']);
    expect(none).toMatchObject({ code: 2, stderr: 'error: usage: service scale: give --min, --max or --target\n' });
  });

  it('cli service - rm deletes the service', async () => {
    expect((await cli(['service', 'create', 'doomed-svc', '--function', 'room'])).code).toBe(0);
    const run = await cli(['service', 'rm', 'doomed-svc']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(lastRequest()).toMatchObject({ method: 'DELETE', url: '/v1/services/doomed-svc' });
    expect(run.stdout.toString()).toBe('deleted doomed-svc\n');
    expect((await cli(['service', 'get', 'doomed-svc'])).code).toBe(1);
  });

  it('cli service - instance migrate sends --to and --max-rounds and prints rounds, downtime, total and bytes', async () => {
    expect((await cli(['service', 'create', 'mover', '--function', 'room'])).code).toBe(0);
    const run = await cli(['instance', 'migrate', 'mover-0', '--to', 'host-c', '--max-rounds', '2']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/instances/mover-0/migrate' });
    expect(sentJson()).toEqual({ target: 'host-c', maxRounds: 2 });
    expect(lines(run)).toEqual([
      'instance   mover-0: host-a -> host-c',
      'rounds     2 pre-copy rounds (budget), then 12 pages paused; dirty tracking async',
      'downtime   3.3 ms (stop 1.0, send 0.0, commit 2.0, release 0.3)',
      'total      41.5 ms',
      'bytes      3.0 MiB',
      'forwarded  1 request',
    ]);
    const json = await cli(['--json', 'instance', 'migrate', 'mover-0']);
    expect(sentJson()).toEqual({});
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ source: 'host-a', target: 'host-b', rounds: expect.any(Array), totalBytes: 3 * 2 ** 20 });
    const busy = await cli(['instance', 'migrate', 'busy-1']);
    expect(busy).toMatchObject({ code: 1, stderr: 'error: conflict: instance busy-1 is being migrated already (to host host-b)\n' });
  });

  it('cli service - host drain prints each move; a failed move keeps exit code 1', async () => {
    const run = await cli(['host', 'drain', 'host-a']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/hosts/host-a/drain' });
    expect(lines(run)).toEqual(['host-a drained: 1 instance moved, 0 failed', '  inst-1 (room) host-a -> host-b, downtime 2.5 ms']);
    const stuck = await cli(['host', 'drain', 'host-b']);
    expect(stuck.code).toBe(1);
    expect(lines(stuck)).toEqual(['host-b still draining: 0 instances moved, 1 failed', '  inst-9 not moved: no host can take it']);
    const json = await cli(['--json', 'host', 'drain', 'host-a']);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ hostId: 'host-a', moved: [{ instanceId: 'inst-1', ok: true }], failed: [] });
  });

  it('cli service - host activate posts to the host; an unknown host exits 1', async () => {
    const run = await cli(['host', 'activate', 'host-b']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(lastRequest()).toMatchObject({ method: 'POST', url: '/v1/hosts/host-b/activate' });
    expect(run.stdout.toString()).toBe('activated host-b\n');
    const unknown = await cli(['host', 'activate', 'host-zz']);
    expect(unknown).toMatchObject({ code: 1, stderr: 'error: not_found: host-zz is not a live host\n' });
  });
});

describe('cli job', () => {
  function stderrLines(run: CliRun): string[] {
    return run.stderr.trimEnd().split('\n');
  }

  it('cli job - run on a pipe prints one line per event on stderr and the reduce output on stdout', async () => {
    const input = join(scratch, 'job-input.txt');
    await writeFile(input, 'x');
    const run = await cli(['job', 'run', 'sum', '--clones', '3', '--input', input]);
    expect(run.code).toBe(0);
    expect(run.stdout.toString()).toBe('x+x+x');
    const events = stderrLines(run);
    expect(events[0]).toMatch(/^state queued: job job-\d+, sum, 3 clones \(0 done, 0 failed\)$/);
    expect(events).toContain('placed parent on host-a');
    expect(events).toContain('forked 3 clones on host-a, running in 4ms');
    expect(events).toContain('progress clone 1: 1/2');
    expect(events).toContain('clone 1 done on host-b in 101ms, 11 pages fetched');
    expect(events.at(-1)).toBe('done in 1s: 3/3 clones, 33 pages fetched');
    const body = JSON.parse(gateway.requests.filter((r) => r.url === '/v1/jobs' && r.method === 'POST').at(-1)!.body.toString());
    expect(body).toEqual({ function: 'sum', clones: 3, input: Buffer.from('x').toString('base64') });
  });

  it('cli job - run --inputs DIR sends the files in name order, one clone each; --json prints the job and the outputs', async () => {
    const dir = join(scratch, 'inputs');
    await mkdir(dir);
    await writeFile(join(dir, 'b.txt'), 'second');
    await writeFile(join(dir, 'a.txt'), 'first');
    await mkdir(join(dir, 'c-not-a-file'));
    const run = await cli(['job', 'run', 'sum', '--inputs', dir, '--no-reduce', '--retries', '2', '--timeout', '500', '--json']);
    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout.toString());
    expect(document).toMatchObject({ job: { function: 'sum', state: 'done', clones: 2 }, result: ['first', 'second'], resultEncoding: 'utf8' });
    const body = JSON.parse(gateway.requests.filter((r) => r.url === '/v1/jobs' && r.method === 'POST').at(-1)!.body.toString());
    expect(body).toMatchObject({ clones: 2, reduce: false, retries: 2, timeoutMs: 500 });
    expect(body.inputs.map((b: string) => Buffer.from(b, 'base64').toString())).toEqual(['first', 'second']);
  });

  it('cli job - run --idempotency-key twice follows one job', async () => {
    const first = JSON.parse((await cli(['--json', 'job', 'run', 'sum', '--clones', '1', '--idempotency-key', 'cli-key'])).stdout.toString());
    const again = JSON.parse((await cli(['--json', 'job', 'run', 'sum', '--clones', '1', '--idempotency-key', 'cli-key'])).stdout.toString());
    expect(again.job.id).toBe(first.job.id);
    expect(gateway.requests.filter((r) => r.url === '/v1/jobs' && r.method === 'POST').at(-1)!.headers['idempotency-key']).toBe('cli-key');
  });

  it('cli job - run --out writes the result to a file; binary results are base64 in --json', async () => {
    const out = join(scratch, 'result.bin');
    const input = join(scratch, 'binary-input');
    await writeFile(input, Buffer.from([0xff, 0x00]));
    expect((await cli(['job', 'run', 'sum', '--clones', '2', '--input', input, '--out', out])).stdout.length).toBe(0);
    expect(await readFile(out)).toEqual(Buffer.from([0xff, 0x00, 0x2b, 0xff, 0x00]));
    const json = JSON.parse((await cli(['--json', 'job', 'run', 'sum', '--clones', '1', '--input', input])).stdout.toString());
    expect(json).toMatchObject({ result: '/wA=', resultEncoding: 'base64' });
  });

  it("cli job - a failed job exits 1 with error: <code>: <message> and each failed clone's error", async () => {
    const run = await cli(['job', 'run', 'fail', '--clones', '3']);
    expect(run.code).toBe(1);
    expect(run.stdout.length).toBe(0);
    expect(stderrLines(run).slice(-3)).toEqual([
      'failed: guest_trap: clone 1 failed: unreachable executed',
      'error: guest_trap: clone 1 failed: unreachable executed',
      '  clone 1: guest_trap: unreachable executed',
    ]);
    expect(run.stderr).toContain('clone 1 failed on host-b: guest_trap: unreachable executed (attempt 1), retrying\n');
    expect(run.stderr).toContain('clone 1 failed on host-b: guest_trap: unreachable executed (attempt 2)\n');
    const json = await cli(['--json', 'job', 'run', 'fail', '--clones', '2']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ job: { state: 'failed', errors: [{ index: 1 }] }, result: null });
  });

  it('cli job - ls prints a table of jobs, newest first', async () => {
    await cli(['job', 'run', 'sum', '--clones', '2']);
    const run = await cli(['job', 'ls']);
    expect(run.code).toBe(0);
    const [header, first] = lines(run);
    expect(header.split(/\s{2,}/)).toEqual(['ID', 'FUNCTION', 'STATE', 'DONE', 'FAILED', 'PAGES', 'CREATED', 'TOOK']);
    // The stub dates jobs 2 s back; a loaded machine may take a second or two to start the CLI.
    expect(first.split(/\s+/)).toEqual([expect.stringMatching(/^job-\d+$/), 'sum', 'done', '2/2', '0', '21', expect.stringMatching(/^[2-4]s$/), 'ago', '1s']);
    const paged = await cli(['job', 'ls', '--limit', '1']);
    expect(lines(paged)).toHaveLength(2);
    expect(paged.stderr).toMatch(/^more: flurry job ls --cursor 1\n$/);
    // `list`, the name before `ls`, is an alias.
    expect(JSON.parse((await cli(['--json', 'job', 'list'])).stdout.toString()).jobs[0].id).toBe(first.split(' ')[0]);
  });

  it('cli job - get shows the record and a row per clone; events prints the events, as JSON lines with --json', async () => {
    const submitted = await cli(['--json', 'job', 'run', 'fail', '--clones', '2']);
    const id = JSON.parse(submitted.stdout.toString()).job.id as string;
    const status = await cli(['job', 'get', id]);
    expect(status.code).toBe(0);
    expect(lines(status)).toContain(`id             ${id}`);
    expect(lines(status)).toContain('error          guest_trap: clone 1 failed: unreachable executed');
    const [clonesHeader, , failedClone] = status.stdout.toString().trimEnd().split('\n').slice(-3);
    expect(clonesHeader.split(/\s+/)).toEqual(['CLONE', 'STATE', 'HOST', 'ATTEMPTS', 'RUN', 'PAGES', 'ERROR']);
    expect(failedClone.trim().split(/\s+/)).toEqual(['1', 'failed', 'host-b', '2', '40ms', 'guest_trap:', 'unreachable', 'executed']);
    const logs = await cli(['job', 'events', id]);
    expect(logs.code).toBe(0);
    // A finished job's stream is its final state and its end.
    expect(lines(logs)).toEqual([
      `state failed: job ${id}, fail, 2 clones (1 done, 1 failed)`,
      'failed: guest_trap: clone 1 failed: unreachable executed',
    ]);
    const jsonLogs = lines(await cli(['--json', 'job', 'events', id])).map((line) => JSON.parse(line).kind);
    // `status`, the name before `get`, is an alias.
    expect(lines(await cli(['job', 'status', id]))).toContain(`id             ${id}`);
    expect(jsonLogs.at(-1)).toBe('failed');
  });

  it('cli job - Ctrl-C stops following the job, says how to cancel it and exits 130', async () => {
    const child = spawn(process.execPath, [CLI, 'job', 'run', 'hang', '--clones', '1'], {
      env: { PATH: process.env.PATH, FLURRY_URL: gateway.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('placed parent on host-a')) resolve();
      });
    });
    child.kill('SIGINT');
    expect(await closed).toBe(130);
    const id = /job (job-\d+)/.exec(stderr)![1];
    expect(stderr).toContain(`flurry: stopped following job ${id}; it keeps running (flurry job cancel ${id} stops it)\n`);
    expect((await cli(['job', 'cancel', id])).stdout.toString()).toBe(`${id} cancelled\n`);
  });

  it('cli job - cancel prints the cancelled state', async () => {
    // A job that never ends, submitted without the CLI (whose `job run` would wait for it).
    const response = await fetch(`${gateway.url}/v1/jobs`, { method: 'POST', body: JSON.stringify({ function: 'hang', clones: 1 }) });
    const { job: hanging } = (await response.json()) as { job: { id: string } };
    const run = await cli(['job', 'cancel', hanging.id]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.toString()).toBe(`${hanging.id} cancelled\n`);
  });

  it('cli job - usage errors exit 2: no clone count, --inputs disagreeing with --clones, a bad number, --input with --inputs', async () => {
    expect(await cli(['job', 'run', 'sum'])).toMatchObject({ code: 2, stderr: 'error: usage: --clones is required (or --inputs DIR, one clone per file)\n' });
    const dir = join(scratch, 'two-inputs');
    await mkdir(dir);
    await writeFile(join(dir, '1'), 'a');
    await writeFile(join(dir, '2'), 'b');
    expect((await cli(['job', 'run', 'sum', '--inputs', dir, '--clones', '3'])).stderr).toMatch(/^error: usage: --inputs: .* has 2 files, but --clones is 3\n$/);
    expect((await cli(['job', 'run', 'sum', '--clones', 'many'])).code).toBe(2);
    expect((await cli(['job', 'run', 'sum', '--clones', '1', '--input', 'x', '--inputs', dir])).code).toBe(2);
    expect(await cli(['job', 'get', 'job-404'])).toMatchObject({ code: 1, stderr: 'error: not_found: no job job-404\n' });
  });
});
