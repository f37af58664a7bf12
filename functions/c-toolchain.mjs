// What of the C guests' toolchain (clang for wasm32-wasi) this machine has, and which Debian
// packages give the rest. Shared by functions/build.mjs and the set-up (infra/setup.mjs),
// which decides whether to install them, or to go on without the C guests.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What of clang, wasm-ld, wasi-libc and the wasm32 builtins is missing. */
export function missingToolchain() {
  const run = (...a) => spawnSync('clang', a, { encoding: 'utf8' });
  const version = run('--version');
  if (version.status !== 0) return ['clang', 'wasm-ld', 'wasi-libc', 'wasm32 compiler-rt builtins'];
  const missing = [];
  const file = (flag) => run('--target=wasm32-wasi', flag).stdout?.trim() ?? '';
  const exists = (p) => p.startsWith('/') && existsSync(p);
  if (!exists(file('-print-prog-name=wasm-ld'))) missing.push('wasm-ld');
  if (!exists(file('-print-file-name=libc.a'))) missing.push('wasi-libc');
  if (!exists(file('-print-libgcc-file-name'))) missing.push('wasm32 compiler-rt builtins');
  return missing;
}

/** Debian packages providing the missing pieces, matching clang's version. */
export function aptPackages(missing) {
  const major = /clang version (\d+)/.exec(spawnSync('clang', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
  const names = {
    clang: 'clang',
    'wasm-ld': 'lld', // provides /usr/bin/wasm-ld, where clang looks
    'wasi-libc': 'wasi-libc',
    'wasm32 compiler-rt builtins': major ? `libclang-rt-${major}-dev-wasm32` : 'libclang-rt-dev-wasm32',
  };
  return [...new Set(missing.map((m) => names[m]))];
}
