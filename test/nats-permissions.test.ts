// The shipped NATS permissions, tried as an attacker holding one host's
// credentials would: a real nats-server started by LocalFleet with the
// generated users. Each refusal is the server's own permission error. Then
// the hosts' own checks (a fork must agree with the snapshot it names, and
// send results where the job's identity says) and the coordinator's (a result
// counts only from an attempt it sent): forged results are refused, counted,
// and the job still finishes exactly.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  decode, decodeDescriptor, encode, encodeDescriptor, JobSubjects, requestSnapshot, Subjects,
  type CloneResult, type ForkReply, type ForkRequest,
} from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json } from './helpers/gateway-api.js';
import { b64, cloneOutputs, finishedJob, submitJob } from './helpers/jobs.js';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('NATS permissions', () => {
  let fleet: LocalFleet;
  let admin: NatsConnection;
  /** A connection with host-1's credentials, as a process that took over host-1 would have. */
  let evil: NatsConnection;
  const errors: string[] = [];
  let digest: string;
  const api = gatewayApi(() => fleet.url);

  beforeAll(async () => {
    fleet = await LocalFleet.start({ hosts: 2, hostEnv: { FLURRY_GUEST_THREADS: '2' }, gatewayEnv: {} });
    admin = await connect(fleet.adminConnectOptions());
    const h1 = fleet.credentials!.host('host-1');
    evil = await connect({ servers: fleet.natsUrl, user: h1.user, pass: h1.password, inboxPrefix: h1.inboxPrefix });
    void (async () => {
      for await (const s of evil.status()) if (s.type === 'error') errors.push(String((s as { error?: Error }).error?.message));
    })();
    const res = await deploy(fleet.url, 'pattern', guestProgram('pattern'));
    digest = ((await res.json()) as { function: { digest: string } }).function.digest;
  });

  afterAll(async () => {
    await evil?.close();
    await admin?.close();
    await fleet?.stop();
  });

  /** Subscribes with host-1's credentials; the server's answer has arrived once the flush returns. */
  async function trySubscribe(subject: string): Promise<string | undefined> {
    const sub = evil.subscribe(subject);
    let refused: string | undefined;
    void sub.closed.then((err) => { if (err) refused = err.message; });
    await evil.flush();
    await new Promise((r) => setImmediate(r));
    if (!refused) sub.unsubscribe();
    return refused;
  }

  /** Publishes with host-1's credentials; a refusal arrives (as an async error) before the flush's answer. */
  async function tryPublish(subject: string, data: Uint8Array = new Uint8Array(8)): Promise<string | undefined> {
    const before = errors.length;
    evil.publish(subject, data);
    await evil.flush();
    await new Promise((r) => setImmediate(r));
    return errors.slice(before).find((e) => e.includes(subject));
  }

  it('the server configuration and the admin credentials are readable by their owner only', () => {
    expect(statSync(join(fleet.dataDir, 'nats', 'nats-server.conf')).mode & 0o777).toBe(0o600);
    expect(statSync(join(fleet.dataDir, 'nats-admin.json')).mode & 0o777).toBe(0o600);
  });

  it('a host added later gets a user of its own: the server reloads, and the new host is held to its own subjects', async () => {
    await fleet.addHost('late');
    await fleet.waitForHosts(3);
    const late = fleet.credentials!.host('late');
    const nc = await connect({ servers: fleet.natsUrl, user: late.user, pass: late.password, inboxPrefix: late.inboxPrefix });
    try {
      const own = nc.subscribe('flurry.host.late.fork');
      const other = nc.subscribe('flurry.host.host-1.fork');
      let otherRefused: Error | void = undefined;
      void other.closed.then((err) => { otherRefused = err; });
      await nc.flush();
      await new Promise((r) => setImmediate(r));
      expect(String(otherRefused)).toMatch(/Permissions Violation for Subscription to "flurry\.host\.host-1\.fork"/);
      expect(own.isClosed()).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it('a host may subscribe to its own subjects and the fleet subjects it serves', async () => {
    expect(await trySubscribe('flurry.host.host-1.fork')).toBeUndefined();
    expect(await trySubscribe(`${fleet.credentials!.host('host-1').inboxPrefix}.x`)).toBeUndefined();
    expect(await trySubscribe('flurry.fn.t.f.0123456789abcdef.invoke')).toBeUndefined();
  });

  it("a host's credentials are refused another host's subjects and inbox", async () => {
    expect(await trySubscribe('flurry.host.host-2.fork')).toMatch(/Permissions Violation for Subscription to "flurry\.host\.host-2\.fork"/);
    expect(await trySubscribe('flurry.host.*.fork')).toMatch(/Permissions Violation for Subscription/);
    expect(await trySubscribe('_INBOX_host-host-2.>')).toMatch(/Permissions Violation for Subscription to "_INBOX_host-host-2\.>"/);
    expect(await trySubscribe('_INBOX_gateway.>')).toMatch(/Permissions Violation for Subscription/);
    expect(await trySubscribe('>')).toMatch(/Permissions Violation for Subscription/);
    // Nor may it send another host work.
    expect(await tryPublish('flurry.host.host-2.fork')).toMatch(/Permissions Violation for Publish to "flurry\.host\.host-2\.fork"/);
    // Nor have the controller drain another host, or any host by the API's subject.
    expect(await tryPublish('flurry.controller.exiting.host-2')).toMatch(/Permissions Violation for Publish/);
    expect(await tryPublish('flurry.controller.drain')).toMatch(/Permissions Violation for Publish/);
  });

  it('a host cannot write the module store, a function record, another host record, a job record or spec, or an upload', async () => {
    const kv = await jetstreamManager(admin);
    const modulesBefore = (await kv.streams.info('OBJ_flurry_modules')).state.messages;
    for (const subject of [
      '$O.flurry_modules.M.ZGVmYXVsdC9ldmls',
      '$O.flurry_modules.C.evilchunk',
      '$KV.flurry_functions.default.pattern',
      '$KV.flurry_hosts.host-2',
      '$KV.flurry_jobs.default.job_x',
      '$KV.flurry_job_keys.default.k',
      '$O.flurry_data_default.M.eA',
      // A job's spec and inputs (the gateway's); hosts write clone outputs to their own store only.
      '$O.flurry_job_data.M.ZGVmYXVsdC9qb2IvzcGVj',
      '$O.flurry_job_data.C.evilchunk',
      JobSubjects.events('default', 'job_x'),
    ]) {
      expect(await tryPublish(subject), subject).toMatch(new RegExp(`Permissions Violation for Publish to "${subject.replace(/[$.]/g, '\\$&')}"`));
    }
    expect((await kv.streams.info('OBJ_flurry_modules')).state.messages).toBe(modulesBefore);
    const fn = await json<{ function: { digest: string } }>(await api('GET', '/v1/functions/pattern'));
    expect(fn.function.digest).toBe(digest);
    // Its own record it may write.
    expect(await tryPublish('$KV.flurry_hosts.host-1', encode({ probe: true }))).toBeUndefined();
  });

  it("a host cannot read job records, results, the services' state or tenants' guest logs", async () => {
    for (const subject of [
      '$JS.API.DIRECT.GET.KV_flurry_jobs', '$JS.API.STREAM.MSG.GET.FLURRY_RESULTS', '$JS.API.CONSUMER.CREATE.KV_flurry_services', '$JS.API.STREAM.INFO.KV_flurry_job_keys',
      '$JS.API.CONSUMER.CREATE.FLURRY_GUEST_LOGS', '$JS.API.DIRECT.GET.FLURRY_GUEST_LOGS',
    ]) {
      expect(await tryPublish(subject, enc({ last_by_subj: 'x' })), subject).toMatch(/Permissions Violation for Publish/);
    }
    // What it needs it may read: function records (a watch) and modules.
    expect(await tryPublish('$JS.API.STREAM.INFO.KV_flurry_functions', enc({}))).toBeUndefined();
    // Guest logs it only adds to; creating their stream (and choosing what it captures) is the gateway's.
    expect(await tryPublish('flurry.logs.default.fn.pattern', encode({ probe: true }))).toBeUndefined();
    expect(await tryPublish('$JS.API.STREAM.CREATE.FLURRY_GUEST_LOGS', enc({ name: 'FLURRY_GUEST_LOGS', subjects: ['>'] }))).toMatch(/Permissions Violation for Publish/);
  });

  it('a host cannot purge or delete a stream, or delete a message', async () => {
    const jsm = await jetstreamManager(admin);
    const before = await jsm.streams.info('KV_flurry_functions');
    for (const subject of ['$JS.API.STREAM.PURGE.KV_flurry_functions', '$JS.API.STREAM.DELETE.KV_flurry_functions', '$JS.API.STREAM.MSG.DELETE.KV_flurry_functions', '$JS.API.STREAM.DELETE.FLURRY_RESULTS']) {
      expect(await tryPublish(subject, enc({ seq: 1 })), subject).toMatch(/Permissions Violation for Publish/);
    }
    // Through the JetStream client, as a tool would: no answer comes, and nothing changed.
    const hostJsm = await jetstreamManager(evil, { timeout: 1000 });
    await expect(hostJsm.streams.purge('KV_flurry_functions')).rejects.toThrow();
    const after = await jsm.streams.info('KV_flurry_functions');
    expect(after.state.messages).toBe(before.state.messages);
    expect(after.state.first_seq).toBe(before.state.first_seq);
  });

  it('a host refuses a fork whose tenant or module differs from the snapshot it names, or that sends results elsewhere', async () => {
    const snap = await requestSnapshot(admin, 'host-1', { requestId: 'perm-snap', tenant: 'default', name: 'pattern', digest, initInput: enc({ mib: 1 }) });
    const d = decodeDescriptor(snap.descriptor);
    const fork = async (req: Partial<ForkRequest>) => decode<ForkReply>((await admin.request(Subjects.fork('host-1'), encode({
      requestId: 'perm-fork', descriptor: snap.descriptor, clones: [{ index: 0, input: new Uint8Array(0) }], count: 1, resultSubject: 'flurry.fork.abc', prefetch: false, ...req,
    } satisfies ForkRequest), { timeout: 10_000 })).data);
    const refused = (r: ForkReply) => (r.ok ? 'accepted' : `${r.error.code}: ${r.error.message}`);
    expect(refused(await fork({ descriptor: encodeDescriptor({ ...d, tenant: 'other' }) }))).toMatch(/^bad_request: .*names snapshot/);
    expect(refused(await fork({ descriptor: encodeDescriptor({ ...d, moduleDigest: 'f'.repeat(64) }) }))).toMatch(/^bad_request: .*names snapshot/);
    expect(refused(await fork({ resultSubject: '$KV.flurry_functions.default.pattern' }))).toMatch(/^bad_request: results may go to a driver's inbox/);
    expect(refused(await fork({ requestId: 'job_a.1.x', perIndexResults: true, resultSubject: JobSubjects.results('default', 'job_a'), failSubject: JobSubjects.attemptFailures('default', 'job_a.1.x') }))).toMatch(/^bad_request: a job's fork request must name its job/);
    expect(refused(await fork({ requestId: 'job_a.1.x', jobId: 'job_a', perIndexResults: true, resultSubject: JobSubjects.results('other', 'job_a'), failSubject: JobSubjects.attemptFailures('default', 'job_a.1.x') }))).toMatch(/^bad_request: resultSubject/);
    expect(refused(await fork({ requestId: 'job_a.1.x', jobId: 'job_a', objects: { store: 'flurry_job_data', inputs: { 0: 'other/job_b/input' } } }))).toMatch(/^bad_request: input object/);
    expect(refused(await fork({ mode: 'cold', initData: { store: 'flurry_data_other', name: 'x', digest: 'sha256:00', bytes: 1 } }))).toMatch(/^bad_request: init data/);
    const ok = await fork({});
    expect(ok.ok).toBe(true);
  });

  it('forged results for indices host-1 was not sent are refused by the coordinator, counted, and the job finishes exactly', async () => {
    // Stored in the results stream before any clone runs (the stream keeps one result per index): the hosts are
    // stopped from before the job exists until the forgeries are stored, so no real result can come first.
    const hosts = fleet.hosts.map((h) => h.process);
    hosts.forEach((p) => p.kill('SIGSTOP'));
    let id: string;
    let tenant: string;
    try {
      ({ id, tenant } = await submitJob(api, { function: 'pattern', clones: 6, init: b64({ mib: 16 }), input: b64({ verify: 'all' }) }));
      const js = jetstream(evil);
      const forged = (index: number, hostId: string): CloneResult => ({
        requestId: `${id}.1.forged`, hostId, index, ok: true, output: enc({ forged: true }), startMs: 0, runMs: 0, pages: { local: 0, multicast: 0, unicast: 0, zero: 0 }, faultWaitMs: 0,
      });
      await js.publish(JobSubjects.result(tenant, id, 0), encode(forged(0, 'host-1')));
      await js.publish(JobSubjects.result(tenant, id, 1), encode(forged(1, 'host-2')));
    } finally {
      hosts.forEach((p) => p.kill('SIGCONT'));
    }
    const done = await finishedJob(api, id, { timeoutMs: 120_000 });
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    expect(done.counts).toEqual({ done: 6, failed: 0, running: 0, pending: 0 });
    const outputs = await cloneOutputs<{ index: number; ok: boolean; forged?: boolean }>(api, { id, clones: 6 });
    outputs.forEach((out, i) => {
      expect(out).toMatchObject({ index: i, ok: true });
      expect(out.forged).toBeUndefined();
    });
    const reduced = JSON.parse(Buffer.from(await (await api('GET', `/v1/jobs/${id}/result`)).arrayBuffer()).toString()) as { count: number; ok: boolean; failed: number[] };
    expect(reduced).toMatchObject({ count: 6, ok: true, failed: [] });
    const refusals = fleet.gateway.lines.filter((l) => l.includes('clone result refused') && l.includes(id)).map((l) => JSON.parse(l) as { index: number; refusedResults: number });
    expect([...new Set(refusals.map((r) => r.index))].sort()).toEqual([0, 1]);
    expect(Math.max(...refusals.map((r) => r.refusedResults))).toBeGreaterThanOrEqual(2);
  });
});
