#!/usr/bin/env node
// Set-up that `npm start`, `npm test` and `npm run bench` run first, on a fresh clone or an old one:
// dependencies, nats-server, the guest programs, the native pager addon, the TypeScript build.
// Plain JavaScript on purpose: it runs before anything is installed or built.
// Each step is skipped when its output is newer than its inputs; each failure says what to do.
// It degrades (setup-decisions.mjs): without clang the C guests are skipped, without make or a
// compiler the native pager is; as root with apt it installs what is missing, without root it
// installs nothing system-wide and says what is missing and how to get it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptPackages, missingToolchain } from '../functions/c-toolchain.mjs';
import { decideCGuests, decideNats, decidePager } from './setup-decisions.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (msg) => { if (!quiet) console.log(`setup: ${msg}`); };

function fail(msg) {
  console.error(`\nsetup failed: ${msg}\n`);
  process.exit(1);
}

function run(cmd, args, what, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', env: { ...process.env, ...opts.env } });
  if (r.error) fail(`${what}: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (${cmd} ${args.join(' ')} exited with ${r.status})`);
}

/** Newest modification time of the files below `paths` (folders walked, node_modules and build output skipped). */
function newest(paths) {
  let t = 0;
  const walk = (p) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) {
      for (const e of readdirSync(p)) if (!['node_modules', 'dist', 'build', '.git'].includes(e)) walk(join(p, e));
    } else t = Math.max(t, s.mtimeMs);
  };
  paths.forEach((p) => walk(join(root, p)));
  return t;
}

function mtime(p) {
  const f = join(root, p);
  return existsSync(f) ? statSync(f).mtimeMs : 0;
}

/** What the set-up may do to this machine: install with apt only as root on a machine that has it. */
const system = {
  root: typeof process.getuid === 'function' && process.getuid() === 0,
  apt: process.platform === 'linux' && existsSync('/usr/bin/apt-get'),
};

function aptInstall(packages, why) {
  say(`installing ${packages.join(' ')} from Debian (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
}

/** `decide` on what `find` finds; after an install, on what it finds then, as if not root (one try). */
function settle(decide, find) {
  const decision = decide({ ...find(), system });
  if (decision.action !== 'install') return decision;
  aptInstall(decision.packages, decision.why);
  return decide({ ...find(), system: { ...system, root: false } });
}

/** Things skipped (the set-up goes on) and things missing (it fails at the end), each with how to get it. */
const skipped = [];
const missing = [];
function note(decision) {
  if (decision.action === 'skip') {
    skipped.push(decision);
    console.log(`setup: skipping ${decision.what}: ${decision.reason}${decision.how ? `\n         to have it: ${decision.how}` : ''}`);
  } else if (decision.action === 'missing') {
    missing.push(decision);
  }
  return decision;
}

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

// 1. Node.js
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) fail(`Flurry needs Node.js 20.12 or newer; this is ${process.versions.node}`);

// 2. npm dependencies (install scripts allowed per package.json "allowScripts", so this never asks).
if (mtime('node_modules/.package-lock.json') < Math.max(mtime('package-lock.json'), mtime('package.json'))) {
  say('installing npm dependencies');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], 'npm install');
}
// The `flurry` command (sdk/bin/flurry.js). npm links a workspace's bin where the lockfile it
// read last said; after the bin moved, one more install links the new place.
const cliBin = join(root, 'sdk', 'bin', 'flurry.js');
const linkedCli = () => { try { return realpathSync(join(root, 'node_modules', '.bin', 'flurry')); } catch { return undefined; } };
if (linkedCli() !== cliBin) {
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], 'npm install (linking the flurry command)');
  if (linkedCli() !== cliBin) fail(`npm did not link node_modules/.bin/flurry to ${cliBin}; run npm install`);
}

// 3. nats-server: NATS_SERVER_BIN, the PATH, /usr/sbin; installed from Debian when missing and possible.
function findNats() {
  if (process.env.NATS_SERVER_BIN) return existsSync(process.env.NATS_SERVER_BIN) ? process.env.NATS_SERVER_BIN : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  return ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));
}
note(settle(decideNats, () => ({ found: findNats() !== undefined, natsUrl: process.env.NATS_URL, needNats: process.argv.includes('--need-nats') })));

// 4. Guest programs: AssemblyScript always; C when clang can build for wasm32-wasi (c-toolchain.mjs).
const cGuests = note(settle(decideCGuests, () => {
  const lacking = missingToolchain();
  return { missing: lacking, packages: lacking.length > 0 ? aptPackages(lacking) : [] };
}));
run('node', ['functions/build.mjs', ...(quiet ? ['--quiet'] : []), ...(cGuests.action === 'skip' ? ['--skip-c'] : [])], 'building the guest programs');

// 5. Native pager addon (userfaultfd). Without it (not Linux, no build tools) hosts use the portable pager.
const pager = note(settle(decidePager, () => ({
  platform: process.platform,
  pagerEnv: process.env.FLURRY_PAGER,
  missingTools: ['make', 'cc', 'c++', 'python3'].filter((tool) => !onPath(tool)),
})));
if (pager.action === 'ready' && process.platform === 'linux' && process.env.FLURRY_PAGER !== 'portable') {
  const addon = 'worker-host/native/build/Release/flurry_pager.node';
  if (mtime(addon) < newest(['worker-host/native'])) {
    say('building the native pager addon');
    const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
    if (!existsSync(gyp)) fail('node-gyp is missing from node_modules; run npm install');
    // Node's own headers (include/node beside the binary), so node-gyp never tries to download them.
    const nodedir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
    const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--directory', 'worker-host/native', '--loglevel=warn'], { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
    if (r.status !== 0) {
      fail('building the native pager (worker-host/native) failed. It needs python3, make and a C compiler (Debian: apt-get install build-essential python3). To run without it, set FLURRY_PAGER=portable.');
    }
  }
}

// 6. TypeScript.
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], 'compiling TypeScript');
if (missing.length > 0) fail(missing.map((m) => `${m.what} not found. To get it: ${m.how}.`).join('\n'));
say(skipped.length === 0 ? 'ready' : `ready without ${skipped.map((s) => s.what).join(' and ')} (see above)`);
