// Set-up step for the dashboard's browser test (test/dashboard.test.ts): Debian's Chromium, which
// playwright-core drives as it is (no browser is downloaded). Installed with apt-get when this runs as root on
// Debian and it is missing; otherwise the set-up says what is missing and the test skips, saying why.
// Plain JavaScript, as infra/setup.mjs: it runs before anything is built.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where the browser test looks for Chromium: FLURRY_CHROMIUM, else Debian's. */
export function chromiumPath(env = process.env) {
  return env.FLURRY_CHROMIUM || '/usr/bin/chromium';
}

/**
 * Makes sure Chromium is there, installing Debian's package when it can. Never fails the set-up: only the
 * browser test needs it. `say` prints a set-up line. Returns the path, or undefined with the reason printed.
 */
export function setupBrowser(say) {
  const path = chromiumPath();
  if (existsSync(path)) return path;
  const why = cannotInstall();
  if (why) {
    say(`Chromium not found at ${path}: the dashboard's browser test will skip (${why})`);
    return undefined;
  }
  say('installing chromium from Debian (the dashboard\'s browser test drives it)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { stdio: 'inherit', env });
  if (r.status === 0 && existsSync(path)) return path;
  say(`installing chromium failed (apt-get exited with ${r.status}): the dashboard's browser test will skip`);
  return undefined;
}

/** Why this machine cannot install Debian's Chromium here, or undefined when it can. */
function cannotInstall() {
  if (process.env.FLURRY_CHROMIUM) return 'FLURRY_CHROMIUM names a file that does not exist';
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get')) return 'no apt-get here: install Chromium and set FLURRY_CHROMIUM to its path';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: run `sudo apt-get install chromium`, or set FLURRY_CHROMIUM';
  return undefined;
}
