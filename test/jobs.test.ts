// Fork-join jobs through the gateway: a real nats-server, a gateway and three
// host processes. Jobs of the `pattern` guest are checked exactly; faults
// (a host killed, the gateway restarted), cancel, retries, idempotency and
// the event stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { encode, JobBuckets, type IdempotencyEntry, type JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { startGateway } from '../infra/src/services.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, jobRecord } from './helpers/gateway-api.js';
import { b64, cloneOutputs, finishedJob, jobUntil, submitJob } from './helpers/jobs.js';
import { expectOneParent, type PatternOutput } from './helpers/pattern.js';

interface PatternReduce { count: number; ok: boolean; failed: number[]; distinctEntropy: number; distinctChecksums: number; restored: number }


describe('jobs', () => {
  let fleet: LocalFleet;

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      ...(process.env.JOBS_TEST_DIR ? { dataDir: process.env.JOBS_TEST_DIR } : {}),
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000', LOG_LEVEL: 'warn' },
    });
    for (const name of ['pattern', 'trap', 'big-output', 'spin']) expect((await deploy(fleet.url, name, guestProgram(name))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fleet.url}/v1/jobs`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

  const api = gatewayApi(() => fleet.url);
  const submit = (body: unknown) => submitJob(api, body);
  // Reads go on while the gateway restarts (the gateway restart test).
  const waitFor = (id: string, test: (j: JobRecord) => boolean) => jobUntil(api, id, 'to get there', test, { timeoutMs: 40_000, throughOutages: true });
  const finished = (id: string) => finishedJob(api, id, { timeoutMs: 40_000, throughOutages: true });

  /** Every index once, every clone ok from the one parent, and pattern's reduce agreeing. */
  async function expectCorrectPatternJob(job: JobRecord, clones: number): Promise<void> {
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(job.counts).toEqual({ done: clones, failed: 0, running: 0, pending: 0 });
    const outputs = await cloneOutputs<PatternOutput>(api, job);
    expect(outputs.map((o) => o.index)).toEqual([...Array(clones).keys()]);
    expectOneParent(outputs, clones);
    expect(new Set(outputs.map((o) => o.entropyHex)).size).toBe(clones);
    const res = await fetch(`${fleet.url}/v1/jobs/${job.id}/result`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const reduced = JSON.parse(Buffer.from(await res.arrayBuffer()).toString()) as PatternReduce;
    expect(reduced).toMatchObject({ count: clones, ok: true, failed: [], distinctEntropy: clones, distinctChecksums: 1, restored: clones });
  }

  it('pattern job - 16 clones over 3 hosts verify the parent, reduce, and the result is exact', async () => {
    const job = await submit({ function: 'pattern', clones: 16, init: b64({ mib: 8 }), input: b64({ verify: 'all' }) });
    expect(job).toMatchObject({ function: 'pattern', clones: 16, state: 'queued', counts: { pending: 16 } });
    const done = await finished(job.id);
    await expectCorrectPatternJob(done, 16);
    expect(done.snapshotId).toBeTruthy();
    expect(done.parentHost).toMatch(/^host-/);
    expect(new Set(done.clonesDetail.map((c) => c.host)).size).toBe(3);
    expect(done.clonesDetail.every((c) => c.attempts === 1 && c.state === 'done')).toBe(true);
    // Without reduce: the clone outputs in index order.
    const plain = await finished((await submit({ function: 'pattern', clones: 3, init: b64({ mib: 1 }), reduce: false })).id);
    const res = await fetch(`${fleet.url}/v1/jobs/${plain.id}/result`);
    const { outputs } = (await res.json()) as { outputs: string[] };
    expect(outputs.map((o) => (JSON.parse(Buffer.from(o, 'base64').toString()) as PatternOutput).index)).toEqual([0, 1, 2]);
    // The list, newest first.
    const list = (await (await fetch(`${fleet.url}/v1/jobs?limit=1`)).json()) as { jobs: JobRecord[]; next?: string };
    expect(list.jobs.map((j) => j.id)).toEqual([plain.id]);
    const rest = (await (await fetch(`${fleet.url}/v1/jobs?limit=1&cursor=${list.next}`)).json()) as { jobs: JobRecord[] };
    expect(rest.jobs.map((j) => j.id)).toEqual([job.id]);
  });

  it('large data - inputs and outputs over 512 KiB go through the object store and come back whole', async () => {
    const big = await finished((await submit({ function: 'big-output', clones: 3, input: b64('700000') })).id);
    expect(big.state, JSON.stringify(big.error)).toBe('done');
    const one = Buffer.from(await (await fetch(`${fleet.url}/v1/jobs/${big.id}/clones/1/output`)).arrayBuffer());
    expect(one.length).toBe(700000);
    expect(one.subarray(0, 32).toString()).toBe('0123456789abcdef0123456789abcdef');
    const { outputs } = (await (await fetch(`${fleet.url}/v1/jobs/${big.id}/result`)).json()) as { outputs: string[] };
    expect(outputs.map((o) => Buffer.from(o, 'base64').length)).toEqual([700000, 700000, 700000]);
    const padded = { verify: 'all', pad: 'x'.repeat(600_000) };
    const job = await finished((await submit({ function: 'pattern', clones: 2, init: b64({ mib: 1 }), inputs: [b64(padded), b64(padded)] })).id);
    await expectCorrectPatternJob(job, 2);
  });

  it('trapping clones - odd indexes retried, then the job fails listing every failed clone', async () => {
    const job = await submit({ function: 'trap', clones: 6, retries: 1 });
    const failed = await finished(job.id);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('guest_trap');
    expect(failed.errors?.map((e) => e.index)).toEqual([1, 3, 5]);
    for (const e of failed.errors!) expect(e.message).toContain(`deliberate trap in clone ${e.index}`);
    for (const c of failed.clonesDetail) expect(c).toMatchObject(c.index % 2 ? { state: 'failed', attempts: 2 } : { state: 'done', attempts: 1 });
    const res = await fetch(`${fleet.url}/v1/jobs/${job.id}/result`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string; message: string } }).error.message).toContain('deliberate trap');
    expect((await fetch(`${fleet.url}/v1/jobs/${job.id}/clones/0/output`)).status).toBe(200);
    expect((await fetch(`${fleet.url}/v1/jobs/${job.id}/clones/1/output`)).status).toBe(404);
  });

  it('clone timeout - clones past timeoutMs are stopped on their hosts, retried, then the job fails with timeout', async () => {
    const job = await submit({ function: 'spin', clones: 2, timeoutMs: 300, retries: 1 });
    const failed = await finished(job.id);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('timeout');
    expect(failed.errors?.map((e) => [e.index, e.code])).toEqual([[0, 'timeout'], [1, 'timeout']]);
    for (const c of failed.clonesDetail) expect(c).toMatchObject({ state: 'failed', attempts: 2 });
  });

  it('idempotency - the same key and body give the same job; a different body is a conflict; a key whose job was never written makes it on retry', async () => {
    const body = { function: 'pattern', clones: 2, init: b64({ mib: 1 }) };
    const key = `k-${Date.now()}`;
    const first = await post(body, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    const a = ((await first.json()) as { job: JobRecord }).job;
    const second = await post(body, { 'idempotency-key': key });
    expect(second.status).toBe(200);
    expect(((await second.json()) as { job: JobRecord }).job.id).toBe(a.id);
    const other = await post({ ...body, clones: 3 }, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('conflict');
    expect((await finished(a.id)).state).toBe('done');
    // A crash between writing the key and writing its job: the key names a job that does not exist.
    // A retry with the same key and body makes that job (it does not wait, nor answer 503 forever).
    const crashedKey = `crashed-${Date.now()}`;
    const crashedBody = JSON.stringify({ ...body, clones: 3 });
    const orphan = `job_orphan${Date.now().toString(36)}`;
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const keys = await new Kvm(jetstream(nc)).open(JobBuckets.jobKeys);
      const sha = (s: string) => createHash('sha256').update(s).digest('hex');
      await keys.create(`default.${sha(crashedKey)}`, encode({ jobId: orphan, bodyHash: sha(crashedBody) } satisfies IdempotencyEntry));
    } finally {
      await nc.close();
    }
    const retried = await fetch(`${fleet.url}/v1/jobs`, { method: 'POST', body: crashedBody, headers: { 'content-type': 'application/json', 'idempotency-key': crashedKey } });
    const made = ((await retried.json()) as { job: JobRecord }).job;
    expect(retried.status).toBe(200);
    expect(made.id).toBe(orphan);
    expect(await finished(orphan)).toMatchObject({ state: 'done', counts: { done: 3 } });
    // And the key now finds it.
    const again = await fetch(`${fleet.url}/v1/jobs`, { method: 'POST', body: crashedBody, headers: { 'content-type': 'application/json', 'idempotency-key': crashedKey } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { job: JobRecord }).job.id).toBe(orphan);
    // Validation.
    expect((await post({ function: 'pattern', clones: 0 })).status).toBe(400);
    expect((await post({ function: 'pattern', clones: 2, inputs: ['AA=='] })).status).toBe(400);
    expect((await post({ function: 'nope', clones: 2 })).status).toBe(404);
    expect((await fetch(`${fleet.url}/v1/jobs/job_missing`)).status).toBe(404);
  });

  it('events - the SSE stream has progress, clone results and done; a late reader gets the state first', async () => {
    const job = await submit({ function: 'pattern', clones: 4, init: b64({ mib: 32 }), input: b64({ verify: 'all' }) });
    const res = await fetch(`${fleet.url}/v1/jobs/${job.id}/events`);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    const kinds = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(kinds[0]).toBe('state');
    expect(kinds).toEqual(expect.arrayContaining(['snapshot', 'forked', 'progress', 'clone.done', 'reduced', 'done']));
    expect(kinds.at(-1)).toBe('done');
    const progress = [...text.matchAll(/^event: progress\ndata: (.+)$/gm)].map((m) => JSON.parse(m[1]) as { index: number; done: number; total: number });
    expect(progress[0]).toMatchObject({ index: expect.any(Number), done: expect.any(Number), total: expect.any(Number) });
    const late = await (await fetch(`${fleet.url}/v1/jobs/${job.id}/events`)).text();
    expect([...late.matchAll(/^event: (.+)$/gm)].map((m) => m[1])).toEqual(['state', 'done']);
  });

  it('cancel - a running job stops, its clones end and it stays cancelled', async () => {
    const job = await submit({ function: 'pattern', clones: 12, init: b64({ mib: 256 }), input: b64({ verify: 'all' }) });
    await waitFor(job.id, (j) => j.counts.running > 0);
    const res = await fetch(`${fleet.url}/v1/jobs/${job.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { job: JobRecord }).job.state).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 500));
    const after = await jobRecord(api, job.id);
    expect(after.state).toBe('cancelled');
    expect(after.counts.done).toBeLessThan(12);
    expect((await fetch(`${fleet.url}/v1/jobs/${job.id}/result`)).status).toBe(409);
    // Stopping clones mid-fault and releasing the snapshot left every host running.
    for (const h of fleet.hosts) expect(h.process.exitCode === null && h.process.signalCode === null, `${h.name}: ${h.lines.slice(-5).join('\n')}`).toBe(true);
  });

  it('gateway restart - the coordinator dies mid-job and the next one resumes it from KV and the results stream', async () => {
    const job = await submit({ function: 'pattern', clones: 12, init: b64({ mib: 256 }), input: b64({ verify: 'all' }) });
    const before = await waitFor(job.id, (j) => j.counts.running > 0 || j.counts.done > 0);
    expect(before.counts.done).toBeLessThan(12);
    await fleet.restartGateway({ hard: true });
    const done = await finished(job.id);
    await expectCorrectPatternJob(done, 12);
  });

  it('host killed - a host dies mid-job; its clones run elsewhere and every index counts once', async () => {
    const job = await submit({ function: 'pattern', clones: 12, init: b64({ mib: 256 }), input: b64({ verify: 'all' }) });
    const running = await waitFor(job.id, (j) => j.clonesDetail.some((c) => c.state === 'running' && c.host !== j.parentHost));
    const victim = running.clonesDetail.find((c) => c.state === 'running' && c.host !== running.parentHost)!.host!;
    const host = fleet.hosts.find((h) => h.ready.hostId === victim || h.name === `host ${victim}`);
    expect(host, victim).toBeDefined();
    await host!.kill();
    const done = await finished(job.id);
    await expectCorrectPatternJob(done, 12);
    // Whatever ran on the dead host and was not finished ran again on the hosts left.
    for (const c of done.clonesDetail) if (c.attempts > 1) expect(c.host).not.toBe(victim);
  });

  it('parent host killed - its memory server dies while clones fault pages in: they fail with the reason, run again elsewhere, and the job finishes exactly', async () => {
    await fleet.addHost('host-4', { FLURRY_GUEST_THREADS: '2' });
    const job = await submit({ function: 'pattern', clones: 12, init: b64({ mib: 256 }), input: b64({ verify: 'all' }) });
    const running = await waitFor(job.id, (j) => j.state === 'running' && j.clonesDetail.some((c) => c.state === 'running' && c.host !== j.parentHost));
    const parent = running.parentHost!;
    const host = fleet.hosts.find((h) => h.ready.hostId === parent || h.name === `host ${parent}`);
    expect(host, parent).toBeDefined();
    await host!.kill();
    const done = await finished(job.id);
    await expectCorrectPatternJob(done, 12);
    expect(done.parentHost).not.toBe(parent);
    expect(done.snapshotId).not.toBe(running.snapshotId);
    // Every event the job had, from the start (Last-Event-ID 0): the clones faulting pages of the dead parent were lost with the reason.
    const events = await (await fetch(`${fleet.url}/v1/jobs/${job.id}/events`, { headers: { 'last-event-id': '0' } })).text();
    const lost = [...events.matchAll(/^event: clone\.lost\ndata: (.+)$/gm)].map((m) => JSON.parse(m[1]!) as { index: number; host: string; reason: string });
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.some((l) => l.host !== parent && /the memory server of snapshot \S+ on host .* did not answer/.test(l.reason)), JSON.stringify(lost)).toBe(true);
  });

  it('standby gateway - any replica serves jobs and streams their events; it takes the lease when the coordinator dies', async () => {
    const standby = await startGateway({ natsUrl: fleet.natsUrl, env: { ...fleet.replicaGatewayEnv(), FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000', LOG_LEVEL: 'warn' } });
    const other = String(standby.ready.url);
    try {
      // Created on the standby, run by the coordinator on the first gateway, streamed by the standby.
      const res = await fetch(`${other}/v1/jobs`, { method: 'POST', body: JSON.stringify({ function: 'pattern', clones: 4, init: b64({ mib: 64 }), input: b64({ verify: 'all' }) }) });
      expect(res.status).toBe(202);
      const { job } = (await res.json()) as { job: JobRecord };
      const text = await (await fetch(`${other}/v1/jobs/${job.id}/events`)).text();
      expect([...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]).at(-1)).toBe('done');
      // The coordinator's gateway dies mid-job; the standby takes the lease and finishes it.
      const slow = (await (await fetch(`${other}/v1/jobs`, { method: 'POST', body: JSON.stringify({ function: 'pattern', clones: 8, init: b64({ mib: 256 }), input: b64({ verify: 'all' }) }) })).json()) as { job: JobRecord };
      await waitFor(slow.job.id, (j) => j.counts.running > 0);
      await fleet.gateway.kill();
      fleet.url = other;
      await expectCorrectPatternJob(await finished(slow.job.id), 8);
    } finally {
      await standby.stop(5000);
    }
  });
});
