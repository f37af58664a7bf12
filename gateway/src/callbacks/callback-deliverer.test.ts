// The deliverer above an in-memory job store: retries, the record it keeps,
// and the address check made again before every attempt (DNS rebinding).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type StoredJob } from '@flurry/core';
import { CallbackAllowList, type Resolver } from './callback-address.js';
import type { CallbackConfig } from './callback-config.js';
import { CallbackDeliverer } from './callback-deliverer.js';
import { CallbackSecrets } from './callback-signature.js';

/** One job record with a revision, as the jobs bucket keeps it. */
class MemoryJobs {
  revision = 1;
  constructor(public stored: StoredJob) {}
  async get() {
    return { stored: structuredClone(this.stored), revision: this.revision };
  }
  async update(stored: StoredJob, revision: number) {
    if (revision !== this.revision) return false;
    this.stored = structuredClone(stored);
    this.revision++;
    return true;
  }
  /** Resolves once the callback is no longer pending. */
  async settled(): Promise<StoredJob['record']['callback']> {
    for (let i = 0; i < 500 && this.stored.record.callback?.state === 'pending'; i++) await new Promise((r) => setTimeout(r, 10));
    return this.stored.record.callback;
  }
}

function endedJob(callbackUrl: string): StoredJob {
  return {
    callbackUrl,
    record: {
      id: 'job_1', tenant: 'acme', function: 'f', digest: 'sha256:00', clones: 1, state: 'done', createdAt: 1, updatedAt: 2,
      counts: { done: 1, failed: 0, running: 0, pending: 0 }, clonesDetail: [], pagesFetched: 0, callback: { state: 'pending', attempts: 0 },
    },
  };
}

const config = (over: Partial<CallbackConfig> = {}): CallbackConfig => ({
  secrets: new CallbackSecrets('s'.repeat(40)), allow: CallbackAllowList.none, attempts: 3, backoffMs: 5, maxBackoffMs: 20, timeoutMs: 2000, ...over,
});
const log = createLogger('test', {}, 'silent');
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function receiver(status: number): Promise<{ port: number; hosts: string[] }> {
  const hosts: string[] = [];
  const server = createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    req.resume();
    res.statusCode = status;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, hosts };
}

describe('CallbackDeliverer', () => {
  it('rebinding - a name that passed at submit but resolves to the metadata address now is refused before connecting, each attempt', async () => {
    const rebound: Resolver = async () => [{ address: '169.254.169.254', family: 4 }];
    const jobs = new MemoryJobs(endedJob('http://hooks.example/done'));
    new CallbackDeliverer(jobs, config(), log, rebound).offer('acme.job_1', jobs.stored);
    const outcome = await jobs.settled();
    expect(outcome).toMatchObject({ state: 'failed', attempts: 3 });
    expect(outcome?.lastStatus).toBeUndefined();
    expect(outcome?.lastError).toContain('hooks.example resolves to 169.254.169.254');
  });

  it('pinning - the attempt connects to the address the check passed (the name itself resolves nowhere)', async () => {
    const { port, hosts } = await receiver(204);
    const resolver: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const jobs = new MemoryJobs(endedJob(`http://hooks.test:${port}/done`));
    new CallbackDeliverer(jobs, config({ allow: CallbackAllowList.parse('127.0.0.1') }), log, resolver).offer('acme.job_1', jobs.stored);
    expect(await jobs.settled()).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 204 });
    expect(hosts).toEqual([`hooks.test:${port}`]);
  });

  it('retries - a failing receiver gets the configured attempts, then the record says failed with its status', async () => {
    const { port, hosts } = await receiver(503);
    const jobs = new MemoryJobs(endedJob(`http://127.0.0.1:${port}/done`));
    const deliverer = new CallbackDeliverer(jobs, config({ allow: CallbackAllowList.parse('127.0.0.1') }), log);
    deliverer.offer('acme.job_1', jobs.stored);
    // Offered again meanwhile (the watch sees each write): still one delivery.
    deliverer.offer('acme.job_1', jobs.stored);
    expect(await jobs.settled()).toMatchObject({ state: 'failed', attempts: 3, lastStatus: 503, lastError: 'the receiver answered 503' });
    expect(hosts).toHaveLength(3);
  });

  it('not due - a running job, a delivered callback or a job without one is left alone', async () => {
    const { port, hosts } = await receiver(200);
    const deliverer = new CallbackDeliverer(new MemoryJobs(endedJob('x')), config({ allow: CallbackAllowList.parse('127.0.0.1') }), log);
    const running = endedJob(`http://127.0.0.1:${port}/`);
    running.record.state = 'running';
    const delivered = endedJob(`http://127.0.0.1:${port}/`);
    delivered.record.callback = { state: 'delivered', attempts: 1 };
    const without = endedJob(`http://127.0.0.1:${port}/`);
    delete without.callbackUrl;
    for (const stored of [running, delivered, without]) deliverer.offer('k', stored);
    await new Promise((r) => setTimeout(r, 100));
    expect(hosts).toEqual([]);
  });
});
