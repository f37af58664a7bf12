// The dashboard in a real browser: Debian's Chromium driven by playwright-core (nothing downloaded), one fleet of
// two hosts. With the admin key the page shows a fork job's progress reach 100% and a live migration's rounds and
// pause while they happen, and saves a screenshot to test/output/dashboard.png (copied by hand to docs/dashboard.png, the README's, when the page changes: a test run leaves the checkout as it was); a user key sees its own tenant only.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import { chromiumPath } from '../infra/setup-browser.mjs';
import { guestProgram } from './helpers/functions.js';
import { json, jobRecord, type Api } from './helpers/gateway-api.js';
import { b64, submitJob } from './helpers/jobs.js';

const CHROMIUM = chromiumPath();
const ADMIN_KEY = 'dash-admin-key-0001';
const USER_KEY = 'dash-alice-key-0001';
/** How long the page may take to show what the API already answered: a few of its 1 s ticks and 2 s polls. */
const SHOWN_WITHIN_MS = 15_000;

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found (npm run setup installs Debian's chromium when run as root; or set FLURRY_CHROMIUM)`;
if (missing) console.log(`[dashboard] skipped: ${missing}`);

interface Report { source: string; target: string; rounds: { pages: number }[]; finalPages: number; downtimeMs: number }

describe.skipIf(missing !== undefined)('dashboard in Chromium', () => {
  let fleet: LocalFleet;
  let browser: Browser;
  const api = (key: string): Api => (method, path, body, headers = {}) =>
    fetch(`${fleet.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const admin = api(ADMIN_KEY);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 2,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '4', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_API_KEYS: `${ADMIN_KEY}=ops:admin,${USER_KEY}=alice`, FLURRY_HOST_TTL_S: '4', FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn' },
    });
    for (const name of ['pattern', 'room']) {
      await json(await fetch(`${fleet.url}/v1/functions/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_KEY}` }, body: guestProgram(name) as Uint8Array<ArrayBuffer> }), 201);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  /** A fresh browser context (its own sessionStorage) on /ui, signed in with `key`; `errors`: what the page threw or logged as an error. */
  async function openDashboard(key: string): Promise<{ page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // The page's first request goes without a key (a gateway may run without): its 401 is expected.
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('status of 401')) errors.push(m.text()); });
    await page.goto(`${fleet.url}/ui`);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#key', key);
    await page.click('#login button[type=submit]');
    await page.locator('#panels').waitFor({ state: 'visible', timeout: SHOWN_WITHIN_MS });
    return { page, errors };
  }

  const textOf = (page: Page, selector: string) => page.locator(selector).first().textContent({ timeout: SHOWN_WITHIN_MS });
  /** Waits for `selector`'s text to contain `text`; the failure says what the page showed instead. */
  const shows = async (page: Page, selector: string, text: string) => {
    try {
      await page.waitForFunction(([s, t]) => document.querySelector(s!)?.textContent?.includes(t!) === true, [selector, text], { timeout: SHOWN_WITHIN_MS });
    } catch (err) {
      const seen = await page.evaluate((s) => document.querySelector(s)?.textContent ?? '(no such element)', selector).catch(() => '(page gone)');
      throw new Error(`the page did not show "${text}" in ${selector} within ${SHOWN_WITHIN_MS} ms; it showed: ${seen} (${(err as Error).message.split('\n')[0]})`);
    }
  };

  it('dashboard - with the admin key: hosts, a fork job\'s progress to 100% and a migration\'s rounds and pause, live', async () => {
    const { page, errors } = await openDashboard(ADMIN_KEY);
    await shows(page, '#status', 'live');
    await shows(page, '#who', 'admin');
    for (const id of ['host-1', 'host-2']) await page.locator(`#hosts tr[data-host="${id}"]`).waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await textOf(page, '#hosts tr[data-host="host-1"]')).toMatch(/active.*(userfaultfd|portable).*\d+ \/ 2/);

    // A service instance with some MiB of state, so that its pre-copy takes rounds.
    await json(await admin('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    await json(await admin('POST', '/svc/room/join', { name: 'ada' }), 200);
    for (let i = 0; i < 24; i++) await json(await admin('POST', '/svc/room/say', { name: 'ada', text: `${i}`.padEnd(65536, 'x') }), 200);
    const instance = (await json<{ service: { instances: { id: string; host: string }[] } }>(await admin('GET', '/v1/services/room'))).service.instances[0]!;
    await page.locator(`#services [data-service="room"]`).waitFor({ timeout: SHOWN_WITHIN_MS });

    // The job, the migration and a client's requests run while the page is open.
    let talking = true;
    const client = (async () => {
      for (let k = 0; talking; k++) await json(await admin('POST', '/svc/room/say', { name: 'ada', text: `m${k}` }), 200);
    })();
    try {
      const job = await submitJob(admin, { function: 'pattern', clones: 8, init: b64({ mib: 32 }), input: b64({ verify: 'all' }) });
      await page.locator(`#jobs tr[data-job="${job.id}"]`).waitFor({ timeout: SHOWN_WITHIN_MS });
      const report = (await json<{ migration: Report }>(await admin('POST', `/v1/instances/${instance.id}/migrate`, {}))).migration;
      expect(report.source).toBe(instance.host);

      // Once the job's row shows it ended (the record says how, if not done), its progress is 100%.
      const row = `#jobs tr[data-job="${job.id}"]`;
      await page.waitForFunction((r) => /^(done|failed|cancelled)$/.test(document.querySelector(`${r} td.state`)?.textContent ?? ''), row, { timeout: 30_000 })
        .catch(async (err: Error) => { throw new Error(`job ${job.id} did not end on the page: ${JSON.stringify(await jobRecord(admin, job.id))} (${err.message.split('\n')[0]})`); });
      expect(await textOf(page, `${row} td.state`), JSON.stringify(await jobRecord(admin, job.id))).toBe('done');
      expect(await textOf(page, `${row} .progress`)).toBe('100%');
      expect(await page.locator(`#jobs tr[data-job="${job.id}"] .clone.done`).count()).toBe(8);

      const card = `#migrations article[data-instance="${instance.id}"]`;
      await shows(page, `${card} .rounds`, `${report.rounds.length} round${report.rounds.length === 1 ? '' : 's'}`);
      expect(await textOf(page, card)).toContain(`${report.source} → ${report.target}`);
      expect(await page.locator(`${card} .round-list li`).count()).toBe(report.rounds.length + 1);
      expect(await textOf(page, `${card} .round-list li`)).toMatch(new RegExp(`^${report.rounds[0]!.pages} pages, `));
      expect(await textOf(page, `${card} .round-list .pause-item`)).toBe(`pause: ${report.finalPages} pages`);
      expect(await textOf(page, `${card} .pause`)).toMatch(/^pause [\d.]+ (ms|s)$/);
      expect(await page.locator(`${card} .chart canvas`).count()).toBe(1);
      // What the page read, as the API answers it (the response check holds it to the document's Dashboard schema).
      const view = await json<{ migrations: { instanceId: string; rounds: unknown[] }[]; moves?: unknown[] }>(await admin('GET', '/v1/dashboard'));
      expect(view.migrations.find((m) => m.instanceId === instance.id)?.rounds).toHaveLength(report.rounds.length);
      expect(view.moves).toEqual([]);

      // The services panel follows the instance to its new host, with the rate of the client's requests there.
      await page.waitForFunction(([target]) => {
        const row = document.querySelector('#services [data-service="room"] tbody tr')?.textContent ?? '';
        return row.includes(target!) && /[1-9][\d.]* req\/s/.test(row);
      }, [report.target], { timeout: SHOWN_WITHIN_MS });
      await page.screenshot({ path: join(repoRoot, 'test', 'output', 'dashboard.png'), fullPage: true });
    } finally {
      talking = false;
      await client;
    }
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('dashboard - a user key sees its own tenant only; a wrong key is refused on the page', async () => {
    const { page, errors } = await openDashboard(USER_KEY);
    await shows(page, '#who', 'user');
    await shows(page, '#hosts', 'host-2');
    // The admin's service and migration are another tenant's: not on this page.
    expect(await textOf(page, '#services .body')).toBe('No services.');
    expect(await textOf(page, '#migrations .body')).toBe('No migration driven by this gateway yet.');
    expect(await textOf(page, '#moves .body')).toContain('admin keys only');
    expect(await page.locator('#hosts').textContent()).not.toContain('room');
    const view = await json<{ caller: unknown; migrations: unknown[]; services: unknown[]; moves?: unknown }>(await api(USER_KEY)('GET', '/v1/dashboard'));
    expect(view).toMatchObject({ caller: { tenant: 'alice', role: 'user' }, migrations: [], services: [] });
    expect(view.moves).toBeUndefined();
    // A wrong key: the login form again, with the gateway's reason.
    await page.click('#forget');
    await page.fill('#key', 'not-a-key-at-all');
    await page.click('#login button[type=submit]');
    await shows(page, '#login-error', 'refused this key');
    expect(await page.evaluate(() => sessionStorage.getItem('flurry.apiKey'))).toBeNull();
    expect(errors).toEqual([]);
    await page.context().close();
  }, 20_000);
});
