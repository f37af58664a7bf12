#!/usr/bin/env node
// Set-up that `npm start`, `npm test` and `npm run bench` run first, on a fresh clone or an old one:
// dependencies, nats-server, the guest programs, the native pager addon, the TypeScript build.
// Plain JavaScript on purpose: it runs before anything is installed or built.
// Each step is skipped when its output is newer than its inputs; each failure says what to do.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function aptInstall(packages, why) {
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get')) return false;
  if (!isRoot()) return false;
  say(`installing ${packages.join(' ')} from Debian (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  return r.status === 0;
}

// 1. Node.js
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) fail(`Flurry needs Node.js 20.12 or newer; this is ${process.versions.node}`);

// 2. npm dependencies (install scripts allowed per package.json "allowScripts", so this never asks).
if (mtime('node_modules/.package-lock.json') < Math.max(mtime('package-lock.json'), mtime('package.json'))) {
  say('installing npm dependencies');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], 'npm install');
}

// 3. nats-server: NATS_SERVER_BIN, the PATH, /usr/sbin; installed from Debian when missing and possible.
function findNats() {
  if (process.env.NATS_SERVER_BIN) return existsSync(process.env.NATS_SERVER_BIN) ? process.env.NATS_SERVER_BIN : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  return ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));
}
if (!process.env.NATS_URL || process.argv.includes('--need-nats')) {
  if (!findNats() && !aptInstall(['nats-server'], 'the fleet runs its own nats-server')) {
    fail('nats-server not found. Install it (Debian/Ubuntu: apt-get install nats-server; or from nats.io), put it on the PATH or set NATS_SERVER_BIN; or set NATS_URL to use a running server with JetStream.');
  }
  if (!findNats()) fail('nats-server was installed but cannot be found; set NATS_SERVER_BIN');
}

// 4. Guest programs (AssemblyScript and C; the build script installs clang for wasm32-wasi when it can).
run('node', ['functions/build.mjs', ...(quiet ? ['--quiet'] : [])], 'building the guest programs');

// 5. Native pager addon (userfaultfd). Only Linux has it; elsewhere hosts use the portable pager.
if (process.platform === 'linux' && process.env.FLURRY_PAGER !== 'portable') {
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
// 7. Chromium for the dashboard's browser test (never fails the set-up).
(await import('./setup-browser.mjs')).setupBrowser(say);
say('ready');
