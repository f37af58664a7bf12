// The CLI as a new user gets it on a fresh clone: after the set-up, npm has linked the
// `flurry` binary (node_modules/.bin/flurry -> sdk/bin/flurry.js); `npm start`
// (infra/dist/fleet.js) starts a fleet that requires API keys and writes the `local` context;
// the linked binary, run from a folder outside the checkout (so the .flurry key finder cannot
// help), lists the fleet's hosts through that context, and `npx flurry --help` works.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../infra/src/free-port.js';
import { repoRoot } from '../infra/src/services.js';
import { until } from './helpers/gateway-api.js';

const LINKED = join(repoRoot, 'node_modules', '.bin', 'flurry');

describe('cli install', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'flurry-cli-install-'));
  const dataDir = join(scratch, 'state');
  const configFile = join(scratch, 'home', '.config', 'flurry', 'config.yaml');
  // Only what a shell would have: no FLURRY_* of the test runner's leaks in.
  const userEnv = { PATH: process.env.PATH, HOME: join(scratch, 'home') };
  let url: string;
  let launcher: ReturnType<typeof spawn>;
  let stdout = '';
  let stderr = '';
  let exited: Promise<number | null>;

  beforeAll(async () => {
    url = `http://127.0.0.1:${await freePort()}`;
    // As `npm start` runs it, in its own process group so that stopping it stops its children.
    launcher = spawn(process.execPath, [join(repoRoot, 'infra', 'dist', 'fleet.js')], {
      cwd: repoRoot,
      env: { ...userEnv, PORT: url.split(':')[2], FLURRY_HOSTS: '1', FLURRY_DATA_DIR: dataDir, FLURRY_GUEST_THREADS: '1', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    launcher.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    launcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((resolve) => launcher.once('exit', (code) => resolve(code)));
    await until('the launcher to print that the fleet is up', async () => {
      if (launcher.exitCode !== null) throw new Error(`the launcher exited with code ${launcher.exitCode}:\n${stdout}\n${stderr}`);
      return stdout.includes('Ctrl-C stops the fleet.') ? true : undefined;
    }, 60_000);
  });

  afterAll(async () => {
    if (launcher?.exitCode === null && launcher.signalCode === null) {
      process.kill(-launcher.pid!, 'SIGINT');
      await exited;
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs `file args` as a user would, in `cwd`. */
  async function run(file: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
    return promisify(execFile)(file, args, { cwd, env: userEnv });
  }

  it('cli install - npm linked node_modules/.bin/flurry to the committed sdk/bin/flurry.js', () => {
    expect(realpathSync(LINKED)).toBe(join(repoRoot, 'sdk', 'bin', 'flurry.js'));
    expect(statSync(LINKED).mode & 0o111).not.toBe(0);
  });

  it('cli install - npm start writes the local context (mode 0600) and says so; the linked binary lists the hosts through it', async () => {
    expect(stdout).toContain(`context   local (current) written to ${configFile}`);
    expect(stdout).toContain('npx flurry hosts');
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    expect(readFileSync(configFile, 'utf8')).toContain(key);
    // The gateway requires a key: without the context's, the binary would be refused.
    expect((await fetch(`${url}/v1/hosts`)).status).toBe(401);
    const table = await run(LINKED, ['hosts'], scratch);
    const [header, row] = table.stdout.trimEnd().split('\n');
    expect(header.split(/\s{2,}/).slice(0, 3)).toEqual(['ID', 'HOSTNAME', 'PID']);
    expect(row.split(/\s+/)[0]).toBe('host-1');
    const json = JSON.parse((await run(LINKED, ['--json', 'hosts'], scratch)).stdout) as { id: string }[];
    expect(json.map((host) => host.id)).toEqual(['host-1']);
    expect((await run(LINKED, ['context', 'ls'], scratch)).stdout).toMatch(new RegExp(`^\\*\\s+local\\s+${url.replace(/\./g, '\\.')}\\s+flk_`, 'm'));
  });

  it('cli install - npx flurry --help in the checkout shows the commands and an example', async () => {
    // --no: never download a package called flurry, the checkout's own must be found; -- keeps --help from npx.
    const help = await run('npx', ['--no', '--', 'flurry', '--help'], repoRoot);
    expect(help.stdout).toMatch(/^Usage: flurry /);
    expect(help.stdout).toMatch(/^ {2}context\|contexts /m);
    expect(help.stdout).toMatch(/\nExamples:\n {2}\$ flurry /);
  });
});
