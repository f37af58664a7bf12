// The set-up's decision about Chromium, which the dashboard's browser test (test/dashboard.test.ts) drives
// through playwright-core as Debian ships it (no browser is downloaded). As the set-up's other decisions
// (setup-decisions.mjs): installed with apt as root, otherwise skipped with how to get it; never required,
// since only that test needs it, and it skips saying the same.
// Plain JavaScript, as infra/setup.mjs: it runs before anything is built.
import { existsSync } from 'node:fs';
import { howToGet } from './setup-decisions.mjs';

const WHAT = "the dashboard's browser test";

/** Where the browser test looks for Chromium: FLURRY_CHROMIUM, else Debian's. */
export function chromiumPath(env = process.env) {
  return env.FLURRY_CHROMIUM || '/usr/bin/chromium';
}

/** What decideBrowser decides from: the path, whether it exists, whether FLURRY_CHROMIUM chose it. */
export function findBrowser(env = process.env) {
  const path = chromiumPath(env);
  return { path, found: existsSync(path), chosen: Boolean(env.FLURRY_CHROMIUM) };
}

/** ready, install (root with apt: Debian's `chromium`) or skip, with the reason and how to get it. */
export function decideBrowser({ path, found, chosen, system }) {
  if (found) return { action: 'ready' };
  if (chosen) return { action: 'skip', what: WHAT, reason: `FLURRY_CHROMIUM names ${path}, which does not exist`, how: 'set FLURRY_CHROMIUM to a Chromium binary' };
  if (system.root && system.apt) return { action: 'install', packages: ['chromium'], why: "the dashboard's browser test drives Debian's Chromium" };
  return { action: 'skip', what: WHAT, reason: `no Chromium at ${path}`, how: `${howToGet(['chromium'], system)}; or set FLURRY_CHROMIUM to a Chromium binary` };
}
