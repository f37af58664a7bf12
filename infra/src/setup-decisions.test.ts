// The set-up's decisions (infra/setup-decisions.mjs): what it installs, skips or requires on a
// machine with or without root, apt, clang and build tools, decided from findings alone.
import { describe, expect, it } from 'vitest';
import { decideCGuests, decideNats, decidePager } from '../setup-decisions.mjs';

const ROOT_DEBIAN = { root: true, apt: true };
const USER_DEBIAN = { root: false, apt: true };
const USER_ELSEWHERE = { root: false, apt: false };
const NO_CLANG = ['clang', 'wasm-ld', 'wasi-libc', 'wasm32 compiler-rt builtins'];
const CLANG_PACKAGES = ['clang', 'lld', 'wasi-libc', 'libclang-rt-19-dev-wasm32'];

describe('setup decisions', () => {
  it('setup - without clang and without root the C guests are skipped, saying what is missing and the apt line for it', () => {
    expect(decideCGuests({ missing: NO_CLANG, packages: CLANG_PACKAGES, system: USER_DEBIAN })).toEqual({
      action: 'skip',
      what: 'the C guests (wordfreq, blast)',
      reason: 'no clang, wasm-ld, wasi-libc, wasm32 compiler-rt builtins for wasm32-wasi',
      how: 'apt-get install -y clang lld wasi-libc libclang-rt-19-dev-wasm32 (as root)',
    });
    // Only a piece missing: only that piece named.
    expect(decideCGuests({ missing: ['wasi-libc'], packages: ['wasi-libc'], system: USER_ELSEWHERE })).toMatchObject({
      action: 'skip',
      reason: 'no wasi-libc for wasm32-wasi',
      how: "install wasi-libc (Debian's names) with your system's package manager",
    });
  });

  it('setup - as root with apt, what is missing is installed; with everything there, nothing is', () => {
    expect(decideCGuests({ missing: NO_CLANG, packages: CLANG_PACKAGES, system: ROOT_DEBIAN })).toMatchObject({ action: 'install', packages: CLANG_PACKAGES });
    expect(decideCGuests({ missing: [], packages: [], system: USER_DEBIAN })).toEqual({ action: 'ready' });
    expect(decideNats({ found: false, natsUrl: undefined, needNats: false, system: ROOT_DEBIAN })).toMatchObject({ action: 'install', packages: ['nats-server'] });
    expect(decidePager({ platform: 'linux', pagerEnv: undefined, missingTools: ['make', 'cc'], system: ROOT_DEBIAN })).toMatchObject({ action: 'install', packages: ['build-essential'] });
    // Root without apt (another distribution) installs nothing either.
    expect(decideNats({ found: false, natsUrl: undefined, needNats: false, system: { root: true, apt: false } }).action).toBe('missing');
  });

  it('setup - without root nothing is installed: nats-server is required (unless NATS_URL names one) and says how to get it', () => {
    const nats = decideNats({ found: false, natsUrl: undefined, needNats: false, system: USER_DEBIAN });
    expect(nats).toMatchObject({ action: 'missing', what: 'nats-server' });
    expect(nats.action === 'missing' && nats.how).toMatch(/^apt-get install -y nats-server \(as root\); or get it from https:\/\/nats\.io.*NATS_SERVER_BIN.*NATS_URL/);
    expect(decideNats({ found: false, natsUrl: 'nats://broker:4222', needNats: false, system: USER_DEBIAN })).toEqual({ action: 'ready' });
    expect(decideNats({ found: false, natsUrl: 'nats://broker:4222', needNats: true, system: USER_DEBIAN }).action).toBe('missing');
    expect(decideNats({ found: true, natsUrl: undefined, needNats: false, system: USER_DEBIAN })).toEqual({ action: 'ready' });
  });

  it('setup - the native pager is never required: skipped without build tools or off Linux, hosts use the portable pager', () => {
    expect(decidePager({ platform: 'linux', pagerEnv: undefined, missingTools: ['make', 'c++', 'python3'], system: USER_DEBIAN })).toEqual({
      action: 'skip',
      what: 'the native pager',
      reason: 'building it needs make, c++, python3; hosts use the portable pager',
      how: 'apt-get install -y build-essential python3 (as root)',
    });
    expect(decidePager({ platform: 'darwin', pagerEnv: undefined, missingTools: [], system: USER_ELSEWHERE })).toMatchObject({ action: 'skip', reason: 'userfaultfd is Linux only; hosts use the portable pager' });
    expect(decidePager({ platform: 'linux', pagerEnv: 'portable', missingTools: ['make'], system: USER_DEBIAN })).toEqual({ action: 'ready' });
    expect(decidePager({ platform: 'linux', pagerEnv: undefined, missingTools: [], system: USER_DEBIAN })).toEqual({ action: 'ready' });
  });
});
