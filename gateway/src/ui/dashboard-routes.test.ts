// The dashboard's routes without a fleet: the page's files served without a key (and nothing else under /ui),
// the data routes behind the API key, scoped to the caller, and the stream's first event.
import { describe, expect, it } from 'vitest';
import { FlurryError, type HostRecord, type Logger } from '@flurry/core';
import { apiRouter } from '../api/api-app.js';
import { addApiDocs } from '../api/api-docs.js';
import { authenticate } from '../auth/roles.js';
import { loadKeyRing } from '../auth/key-sources.js';
import { errorResponse } from '../http-errors.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { uiAssets } from './ui-assets.js';
import { MigrationHistory } from './migration-history.js';

const hosts: HostRecord[] = [{
  id: 'host-1', pid: 1, hostname: 'h', startedAt: 1, heartbeatAt: 1, cores: 2, memoryBytes: 1, guestSlots: 4, runningGuests: 0, pager: 'portable', draining: false,
  warm: [{ tenant: 'alice', name: 'echo', digest: 'd' }, { tenant: 'bob', name: 'hidden', digest: 'e' }],
}];

function app() {
  const a = apiRouter();
  a.onError(errorResponse);
  addApiDocs(a);
  a.notFound((c) => errorResponse(new FlurryError('not_found', `no route for ${c.req.method} ${c.req.path}`), c));
  a.route('/', uiAssets());
  a.use('*', authenticate(loadKeyRing({ FLURRY_API_KEYS: 'alice-key-0001=alice,ops-key-00001=ops:admin' })));
  a.use('*', async (c, next) => {
    c.set('requestId', 'req_test');
    c.set('log', { warn: () => undefined } as unknown as Logger);
    await next();
  });
  const history = new MigrationHistory();
  a.route('/', dashboardRoutes({
    fleet: { live: () => hosts },
    services: { records: { list: async () => [] } as never, migrationHistory: history },
    control: { moves: async () => [] },
  }));
  return a;
}

describe('dashboard routes', () => {
  const a = app();

  it('ui - the page and its modules are served without a key, with a CSP that allows this origin only', async () => {
    for (const path of ['/ui', '/ui/app.js', '/ui/style.css', '/ui/uPlot.esm.js', '/ui/uPlot.min.css']) {
      const res = await a.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(await (await a.request('/ui')).text()).toContain('<script type="module" src="ui/app.js">');
    // The page's links are relative to /ui: /ui/ is sent there.
    const slash = await a.request('/ui/');
    expect(slash.status).toBe(301);
    expect(slash.headers.get('location')).toBe('../ui');
    expect((await a.request('/ui/app.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
  });

  it('ui - a file that is not one of the page\'s is not found, whatever its path says', async () => {
    for (const path of ['/ui/nope.js', '/ui/..%2Fui-assets.ts', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/assets', '/ui/toString', '/ui/__proto__', '/ui/constructor']) {
      const res = await a.request(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('x-flurry-error')).toBe('not_found');
    }
  });

  it('dashboard - needs an API key; a user gets its own tenant\'s view, an admin every tenant\'s and the moves', async () => {
    expect((await a.request('/v1/dashboard')).status).toBe(401);
    expect((await a.request('/v1/dashboard/events', { headers: { authorization: 'Bearer wrong-key-000' } })).status).toBe(401);
    const user = await (await a.request('/v1/dashboard', { headers: { authorization: 'Bearer alice-key-0001' } })).json();
    expect(user).toMatchObject({ caller: { tenant: 'alice', role: 'user' }, services: [], migrations: [] });
    expect(user.hosts[0].warm).toEqual([{ tenant: 'alice', name: 'echo', digest: 'd' }]);
    expect(user.moves).toBeUndefined();
    const admin = await (await a.request('/v1/dashboard', { headers: { authorization: 'Bearer ops-key-00001' } })).json();
    expect(admin.hosts[0].warm).toHaveLength(2);
    expect(admin.moves).toEqual([]);
  });

  it('openapi - the page needs no key; the data routes are in the document with the Dashboard schema', async () => {
    const doc = await (await a.request('/openapi.json')).json();
    expect(doc.paths['/ui'].get.security).toEqual([]);
    expect(doc.paths['/ui/{file}'].get.security).toEqual([]);
    expect(doc.paths['/v1/dashboard'].get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Dashboard' });
    expect(Object.keys(doc.paths['/v1/dashboard/events'].get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(doc.components.schemas.Dashboard.additionalProperties).toBe(false);
  });

  it('dashboard events - the stream starts with the view as an event `dashboard`', async () => {
    const res = await a.request('/v1/dashboard/events', { headers: { authorization: 'Bearer alice-key-0001' } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes('\n\n')) text += (await reader.read()).value ?? '';
    await reader.cancel();
    expect(text).toMatch(/^event: dashboard\ndata: /);
    const view = JSON.parse(text.split('\n')[1]!.slice('data: '.length));
    expect(view.caller).toEqual({ tenant: 'alice', role: 'user' });
  });
});
