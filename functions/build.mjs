#!/usr/bin/env node
// Builds the guest programs under functions/ into functions/build/<name>.wasm:
//
//   AssemblyScript  every folder with an index.ts (lib/ is the library), all
//                   compiled in this one process through the asc API; options
//                   from the folder's asconfig.json, else functions/asconfig.json
//   C               every folder under c/ (and every top-level folder with .c
//                   files and no index.ts), its .c files linked by clang as a
//                   wasm32-wasi reactor (c/flurry.h declares the ABI); an
//                   optional build.json sets {"maxMemoryMiB": N} and extra
//                   compiler flags {"cflags": ["-msimd128"]}
//
// A module newer than all of its inputs is skipped (a cold asc compile costs
// seconds). Every module is checked against the deploy rules afterwards.
//
//   node functions/build.mjs [--force] [--quiet] [--skip-c] [name...]
//
// --quiet prints only failures (and a note when it installs the C toolchain).
// --skip-c builds the AssemblyScript programs only (the set-up passes it when
// this machine cannot compile C for wasm32-wasi; it says why).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptPackages, missingToolchain } from './c-toolchain.mjs';
import { checkModule } from './check-module.mjs';

const ROOT = dirname(fileURLToPath(import.meta.url));
const OUT = join(ROOT, 'build');
const NOT_PROGRAMS = new Set(['lib', 'c', 'build', 'node_modules']);
// C guests: 64 MiB of memory at most, 256 KiB of stack.
const C_MAX_MEMORY = 64 * 1024 * 1024;
const C_STACK = 256 * 1024;

class BuildError extends Error {}

const args = process.argv.slice(2);
const force = args.includes('--force');
const quiet = args.includes('--quiet');
const skipC = args.includes('--skip-c');
const say = (line) => { if (!quiet) console.log(line); };
const only = new Set(args.filter((a) => !a.startsWith('--')));

try {
  await main();
} catch (err) {
  if (!(err instanceof BuildError)) throw err;
  console.error(`functions: ${err.message}`);
  process.exit(1);
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const asPrograms = readdirSync(ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !NOT_PROGRAMS.has(d.name) && existsSync(join(ROOT, d.name, 'index.ts')))
    .map((d) => d.name);
  const cDirs = new Map(); // C program name -> its folder
  if (existsSync(join(ROOT, 'c'))) {
    for (const d of readdirSync(join(ROOT, 'c'), { withFileTypes: true })) if (d.isDirectory()) cDirs.set(d.name, join(ROOT, 'c', d.name));
  }
  // A top-level folder with .c files and no index.ts is a C program too.
  for (const d of readdirSync(ROOT, { withFileTypes: true })) {
    const dir = join(ROOT, d.name);
    if (d.isDirectory() && !NOT_PROGRAMS.has(d.name) && !existsSync(join(dir, 'index.ts')) && readdirSync(dir).some((f) => f.endsWith('.c'))) cDirs.set(d.name, dir);
  }
  const cPrograms = [...cDirs.keys()];
  if (skipC && cPrograms.length > 0) say(`  skip  ${cPrograms.join(', ')} (C guests: --skip-c)`);
  for (const name of only) {
    if (!asPrograms.includes(name) && !cPrograms.includes(name)) throw new BuildError(`no program called ${name}`);
  }
  const wanted = (name) => only.size === 0 || only.has(name);

  const shared = [...filesUnder(join(ROOT, 'lib')), join(ROOT, 'asconfig.json'), fileURLToPath(import.meta.url)];
  for (const name of asPrograms.filter(wanted)) {
    const inputs = [...filesUnder(join(ROOT, name)), ...shared];
    await buildOne(name, inputs, () => compileAssemblyScript(name));
  }

  const cShared = [join(ROOT, 'c', 'flurry.h'), fileURLToPath(import.meta.url)];
  let clang = null;
  for (const name of cPrograms.filter((name) => wanted(name) && !skipC)) {
    const inputs = [...filesUnder(cDirs.get(name)), ...cShared];
    await buildOne(name, inputs, () => {
      clang ??= ensureClang();
      compileC(clang, name, cDirs.get(name));
    });
  }
}

/** Builds one module unless it is newer than all its inputs, then checks it. */
async function buildOne(name, inputs, compile) {
  const out = join(OUT, `${name}.wasm`);
  if (!force && existsSync(out)) {
    const built = statSync(out).mtimeMs;
    if (inputs.every((f) => statSync(f).mtimeMs < built)) {
      say(`  skip  ${name} (up to date)`);
      return;
    }
  }
  const started = performance.now();
  await compile();
  const bytes = readFileSync(out);
  const problems = checkModule(bytes);
  if (problems.length) throw new BuildError(`${name}.wasm ${problems.join('; ')}`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  say(`  built ${name}.wasm (${(bytes.length / 1024).toFixed(1)} KiB, ${seconds} s)`);
}

async function compileAssemblyScript(name) {
  // Loaded lazily: importing the compiler alone takes about a second.
  const { default: asc } = await import('assemblyscript/asc');
  const dir = join(ROOT, name);
  const config = existsSync(join(dir, 'asconfig.json')) ? join(dir, 'asconfig.json') : join(ROOT, 'asconfig.json');
  const argv = [
    relative(ROOT, join(dir, 'index.ts')),
    '--config', relative(ROOT, config),
    '--outFile', relative(ROOT, join(OUT, `${name}.wasm`)),
    '--baseDir', ROOT,
  ];
  let diagnostics = '';
  const stream = { write: (s) => { diagnostics += s; return true; } };
  const { error } = await asc.main(argv, { stdout: stream, stderr: stream });
  if (error) throw new BuildError(`${name}: asc failed: ${error.message}\n${diagnostics.trim()}`);
}

function compileC(clang, name, dir) {
  // <dir>/build.json may raise the memory maximum: {"maxMemoryMiB": 1024}, and add flags: {"cflags": ["-msimd128"]}.
  const opts = existsSync(join(dir, 'build.json')) ? JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) : {};
  const cflags = opts.cflags ?? [];
  if (!Array.isArray(cflags) || !cflags.every((f) => typeof f === 'string' && f.startsWith('-'))) {
    throw new BuildError(`${relative(ROOT, dir)}/build.json: cflags must be a list of flags ("-...")`);
  }
  const maxMemory = opts.maxMemoryMiB ? opts.maxMemoryMiB * 1024 * 1024 : C_MAX_MEMORY;
  const sources = readdirSync(dir).filter((f) => f.endsWith('.c')).map((f) => join(dir, f));
  if (sources.length === 0) throw new BuildError(`${relative(ROOT, dir)} has no .c files`);
  const argv = [
    '--target=wasm32-wasi', '-O2', '-std=c11', '-Wall', '-Wextra',
    '-mexec-model=reactor',
    ...cflags,
    `-I${join(ROOT, 'c')}`,
    `-Wl,--max-memory=${maxMemory}`,
    `-Wl,-z,stack-size=${C_STACK}`,
    '-o', join(OUT, `${name}.wasm`),
    ...sources,
  ];
  const r = spawnSync(clang, argv, { encoding: 'utf8' });
  if (r.error) throw new BuildError(`${name}: cannot run ${clang}: ${r.error.message}`);
  if (r.status !== 0) throw new BuildError(`${name}: clang failed\n${(r.stderr + r.stdout).trim()}`);
  if (r.stderr.trim()) console.warn(r.stderr.trim()); // compiler warnings
}

/** Finds clang with wasm-ld, wasi-libc and the wasm32 builtins; installs them
 * with apt when running as root on Debian, else explains what is missing. */
function ensureClang() {
  let missing = missingToolchain();
  if (missing.length === 0) return 'clang';
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !existsSync('/etc/debian_version')) {
    throw new BuildError(
      `the C guests need ${missing.join(', ')}; on Debian/Ubuntu install them with\n` +
        `  apt-get install -y ${aptPackages(missing).join(' ')}`,
    );
  }
  const packages = aptPackages(missing);
  console.log(`  installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const cmd of [['update'], ['install', '-y', '--no-install-recommends', ...packages]]) {
    const r = spawnSync('apt-get', cmd, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new BuildError(`apt-get ${cmd[0]} failed (exit ${r.status ?? r.error?.message})`);
  }
  missing = missingToolchain();
  if (missing.length) throw new BuildError(`still missing after apt-get: ${missing.join(', ')}`);
  return 'clang';
}

/** Every file below `dir`, recursively. */
function filesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}
