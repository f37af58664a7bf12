// The set-up's decision about Chromium (infra/setup-browser.mjs): installed as root with apt, else skipped
// with how to get it, never required; FLURRY_CHROMIUM names another binary.
import { describe, expect, it } from 'vitest';
import { chromiumPath, decideBrowser } from '../setup-browser.mjs';

const ROOT_DEBIAN = { root: true, apt: true };
const USER_DEBIAN = { root: false, apt: true };
const USER_ELSEWHERE = { root: false, apt: false };

describe('setup browser', () => {
  it('setup - Chromium found: nothing to do, with or without root', () => {
    expect(decideBrowser({ path: '/usr/bin/chromium', found: true, chosen: false, system: USER_ELSEWHERE })).toEqual({ action: 'ready' });
  });

  it('setup - missing as root with apt: Debian\'s chromium is installed', () => {
    expect(decideBrowser({ path: '/usr/bin/chromium', found: false, chosen: false, system: ROOT_DEBIAN })).toMatchObject({ action: 'install', packages: ['chromium'] });
  });

  it('setup - missing without root: only the browser test is skipped, saying how to get Chromium', () => {
    expect(decideBrowser({ path: '/usr/bin/chromium', found: false, chosen: false, system: USER_DEBIAN })).toEqual({
      action: 'skip',
      what: "the dashboard's browser test",
      reason: 'no Chromium at /usr/bin/chromium',
      how: 'apt-get install -y chromium (as root); or set FLURRY_CHROMIUM to a Chromium binary',
    });
    expect(decideBrowser({ path: '/usr/bin/chromium', found: false, chosen: false, system: USER_ELSEWHERE })).toMatchObject({
      action: 'skip', how: "install chromium (Debian's names) with your system's package manager; or set FLURRY_CHROMIUM to a Chromium binary",
    });
  });

  it('setup - FLURRY_CHROMIUM naming nothing is skipped, never replaced by an install', () => {
    expect(chromiumPath({ FLURRY_CHROMIUM: '/opt/chrome/chrome' })).toBe('/opt/chrome/chrome');
    expect(chromiumPath({})).toBe('/usr/bin/chromium');
    expect(decideBrowser({ path: '/opt/chrome/chrome', found: false, chosen: true, system: ROOT_DEBIAN })).toEqual({
      action: 'skip', what: "the dashboard's browser test", reason: 'FLURRY_CHROMIUM names /opt/chrome/chrome, which does not exist', how: 'set FLURRY_CHROMIUM to a Chromium binary',
    });
  });
});
