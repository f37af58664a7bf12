/** The `flurry` CLI, run as `node sdk/dist/cli.js` against a stub gateway (build first: `npx tsc -b sdk`). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
      env: { PATH: process.env.PATH, FLURRY_URL: gateway.url, ...env },
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
    expect(row).toMatch(/^table-a +[0-9a-f]{12} +8 B +64\.0 KiB \/ 1\.0 MiB +handle,init +5s ago$/);
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

  it('cli - function shows one function as labelled fields, or JSON', async () => {
    await deployFixture('shown');
    const run = await cli(['function', 'shown']);
    expect(run.code).toBe(0);
    expect(lines(run)[0]).toBe('name     shown');
    expect(run.stdout.toString()).toMatch(/^digest {3}[0-9a-f]{64}$/m);
    const json = await cli(['--json', 'function', 'shown']);
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ name: 'shown', memory: { initialPages: 1, maximumPages: 16 } });
  });

  it('cli - delete removes a function', async () => {
    await deployFixture('doomed');
    const run = await cli(['delete', 'doomed']);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout.toString()).toBe('deleted doomed\n');
    expect((await cli(['function', 'doomed'])).code).toBe(1);
  });

  it('cli - hosts prints a table of id, pid, slots, running, warm, pager, draining and heartbeat age', async () => {
    const run = await cli(['hosts']);
    expect(run.code).toBe(0);
    const [header, first, second] = lines(run);
    expect(header.split(/\s{2,}/)).toEqual(['ID', 'HOSTNAME', 'PID', 'SLOTS', 'RUNNING', 'WARM', 'PAGER', 'DRAINING', 'HEARTBEAT']);
    expect(first.split(/\s+/)).toEqual(['host-a', 'alpha', '4242', '8', '3', '1', 'userfaultfd', 'no', expect.stringMatching(/^\ds$/), 'ago']);
    expect(second.split(/\s+/).slice(0, 8)).toEqual(['host-b', 'beta', '77', '2', '0', '0', 'portable', 'yes']);
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
    const run = await cli(['invoke', 'busy']);
    expect(run).toMatchObject({ code: 1, stderr: 'error: no_capacity: no host has a free slot\n' });
    expect(run.stdout.length).toBe(0);
  });

  it('cli - an unreachable gateway prints a connection error and exits 1', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const run = await cli(['hosts', '--url', url]);
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
});
