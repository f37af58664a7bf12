/**
 * The gateway's real app (createApp) over in-memory fakes of its stores, for
 * tests of the HTTP layer without a fleet (`app.request`, or served on a
 * port). The fakes record what the routes asked them to do (`calls`), so a
 * refusal can be checked to have changed nothing. Every optional route group
 * (jobs, data, services, host control, guest logs) is present.
 */
import { createLogger, FlurryError, type ApiKeyEntry, type FunctionRecord, type JobRecord } from '@flurry/core';
import { createApp, type AppDeps } from '../../gateway/src/app.js';
import { KeyRing } from '../../gateway/src/auth/key-ring.js';
import { loadCallbackConfig } from '../../gateway/src/callbacks/callback-config.js';

export const FAKE_MAX_BODY_BYTES = 4096;

export function fakeFunction(name: string, exports: string[]): FunctionRecord {
  return { tenant: 'default', name, digest: 'ab'.repeat(32), size: 100, exports, memory: { initialPages: 1, maximumPages: 1 }, createdAt: 1, updatedAt: 1 };
}

/**
 * The app over fakes, with `keys` (none: every caller is the default tenant's admin) and `functions` deployed.
 * `data: false` makes a gateway that keeps no uploaded data (no /v1/data routes; `initData` refused).
 */
export function fakeGateway(opts: { keys?: ApiKeyEntry[]; functions?: FunctionRecord[]; data?: boolean } = {}) {
  const calls: { create: JobRecord[]; claimKey: string[]; services: unknown[][]; updates: unknown[][]; migrations: unknown[][] } = { create: [], claimKey: [], services: [], updates: [], migrations: [] };
  const functions = new Map((opts.functions ?? [fakeFunction('mapper', ['run']), fakeFunction('handler', ['handle'])]).map((f) => [f.name, f]));
  const jobs = new Map<string, JobRecord>();
  const keys = new Map<string, { jobId: string; bodyHash: string }>();
  const deps: AppDeps = {
    link: { connected: true, assertUp: () => undefined, nextOutage: () => ({ outage: new Promise<never>(() => undefined), cancel: () => undefined }) } as never,
    registry: {
      get: async (_tenant: string, name: string) => {
        const found = functions.get(name);
        if (!found) throw new FlurryError('not_found', `function "${name}" is not deployed`);
        return found;
      },
      list: async () => [...functions.values()],
    } as never,
    invoker: {} as never,
    fleet: { list: async () => [] } as never,
    log: createLogger('test', {}, 'silent'),
    maxBodyBytes: FAKE_MAX_BODY_BYTES,
    maxModuleBytes: FAKE_MAX_BODY_BYTES,
    auth: opts.keys ? KeyRing.withKeys(opts.keys) : KeyRing.none(),
    callbacks: loadCallbackConfig({}),
    jobs: {
      // The job routes make a JetStream client of the connection when registered: it only reads its options.
      fabric: { nc: { options: {} } },
      claimKey: async (tenant: string, keyHash: string, entry: { jobId: string; bodyHash: string }) => {
        calls.claimKey.push(keyHash);
        const existing = keys.get(`${tenant}/${keyHash}`);
        if (!existing) keys.set(`${tenant}/${keyHash}`, entry);
        return existing;
      },
      get: async (tenant: string, id: string) => {
        const record = jobs.get(`${tenant}/${id}`);
        return record && { stored: { record }, revision: 1 };
      },
      create: async (stored: { record: JobRecord }) => {
        calls.create.push(stored.record);
        jobs.set(`${stored.record.tenant}/${stored.record.id}`, stored.record);
        return { stored, created: true };
      },
    } as never,
    services: {
      records: {
        create: async (...args: unknown[]) => (calls.services.push(args), { name: 'svc' }),
        update: async (...args: unknown[]) => (calls.updates.push(args), { name: 'svc' }),
      },
      migrations: { migrate: async (...args: unknown[]) => (calls.migrations.push(args), { instanceId: args[1] }) },
    } as never,
    hostControl: {} as never,
    guestLogs: {} as never,
    // No data is uploaded: every name is unknown.
    ...(opts.data === false ? {} : { data: { ref: async (_tenant: string, name: string) => { throw new FlurryError('not_found', `no data "${name}"`); }, list: async () => [] } as never }),
  };
  const app = createApp(deps);
  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.request(path, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { app, send, calls };
}
