// What the set-up (infra/setup.mjs) does about each thing it needs from the machine, decided
// from what it found there. Pure functions of those findings, so that the degraded paths
// (no clang, no root, no apt) are tested without changing the machine (setup-decisions.test.ts).
//
// A decision is one of:
//   ready    nothing to do
//   install  root on a machine with apt: install these Debian packages, then go on
//   skip     go on without it (the set-up prints the reason and how to get it)
//   missing  required: the set-up does everything else, then fails saying how to get it
// Without root nothing is installed system-wide: install is only ever decided for root, and
// the set-up decides again after installing with `root: false`, so it never installs twice.
//
// Plain JavaScript on purpose, as the set-up: it runs before anything is built.

/** How a person gets `packages` on this machine. */
export function howToGet(packages, system) {
  if (system.apt) return `apt-get install -y ${packages.join(' ')} (as root)`;
  return `install ${packages.join(', ')} (Debian's names) with your system's package manager`;
}

/**
 * nats-server, which every local fleet starts. Not needed when NATS_URL names a running
 * server (unless the caller asks for it: --need-nats).
 */
export function decideNats({ found, natsUrl, needNats, system }) {
  if (found || (natsUrl && !needNats)) return { action: 'ready' };
  if (system.root && system.apt) return { action: 'install', packages: ['nats-server'], why: 'the fleet runs its own nats-server' };
  return {
    action: 'missing',
    what: 'nats-server',
    how: `${howToGet(['nats-server'], system)}; or get it from https://nats.io, put it on the PATH or set NATS_SERVER_BIN; or set NATS_URL to a running server with JetStream`,
  };
}

/**
 * The C guests (functions/c, functions/blast), compiled by clang for wasm32-wasi. Without the
 * toolchain they are skipped: the AssemblyScript guests and everything else work without them.
 * `missing` is what c-toolchain.mjs found missing, `packages` the Debian packages giving it.
 */
export function decideCGuests({ missing, packages, system }) {
  if (missing.length === 0) return { action: 'ready' };
  if (system.root && system.apt) return { action: 'install', packages, why: 'clang builds the C guests for wasm32-wasi' };
  return {
    action: 'skip',
    what: 'the C guests (wordfreq, blast)',
    reason: `no ${missing.join(', ')} for wasm32-wasi`,
    how: howToGet(packages, system),
  };
}

/** What each build tool of the native pager comes in on Debian. */
const PAGER_TOOL_PACKAGES = { make: 'build-essential', cc: 'build-essential', 'c++': 'build-essential', python3: 'python3' };

/**
 * The native pager addon (userfaultfd, Linux only), built by node-gyp. Without it hosts use the
 * portable pager (worker-host/src/pager-mode.ts picks it by itself), so it is skipped, never required.
 * `missingTools` are those of make, cc, c++ and python3 not on the PATH.
 */
export function decidePager({ platform, pagerEnv, missingTools, system }) {
  if (pagerEnv === 'portable') return { action: 'ready' };
  if (platform !== 'linux') return { action: 'skip', what: 'the native pager', reason: 'userfaultfd is Linux only; hosts use the portable pager', how: '' };
  if (missingTools.length === 0) return { action: 'ready' };
  const packages = [...new Set(missingTools.map((tool) => PAGER_TOOL_PACKAGES[tool]))];
  if (system.root && system.apt) return { action: 'install', packages, why: 'node-gyp builds the native pager' };
  return {
    action: 'skip',
    what: 'the native pager',
    reason: `building it needs ${missingTools.join(', ')}; hosts use the portable pager`,
    how: howToGet(packages, system),
  };
}
