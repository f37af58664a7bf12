// Kept parents (docs/jobs.md, "Kept parents") over a real fleet: a job's
// parent stays on its host after the job, and a later job with the same
// function version and init input reuses its snapshot (no init, no new
// snapshot, the clone hosts' cached pages still there); another init makes
// a new parent; an idle parent is freed after FLURRY_PARENT_IDLE_MS and its
// pages dropped everywhere; a lost parent host means a new parent elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRecord, JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, until } from './helpers/gateway-api.js';
import { b64, cloneOutputs, finishedJob, submitJob } from './helpers/jobs.js';
import { expectOneParent, type PatternOutput } from './helpers/pattern.js';



/** Jobs and hosts of one fleet, through its gateway. */
function client(fleet: () => LocalFleet) {
  const url = () => fleet().url;
  const api = gatewayApi(url);
  const submit = (body: unknown) => submitJob(api, body);
  const finished = (id: string) => finishedJob(api, id, { timeoutMs: 120_000 });
  async function hosts(): Promise<HostRecord[]> {
    return ((await (await fetch(`${url()}/v1/hosts`)).json()) as { hosts: HostRecord[] }).hosts;
  }
  /** Every clone verified the whole parent memory, from one init. */
  async function expectCorrect(job: JobRecord, clones: number): Promise<PatternOutput[]> {
    expect(job.state, JSON.stringify(job.error ?? job.errors)).toBe('done');
    const outputs = await cloneOutputs<PatternOutput>(api, { id: job.id, clones });
    expectOneParent(outputs, clones);
    return outputs;
  }
  return { submit, finished, hosts, until, expectCorrect };
}

describe('kept parents', () => {
  let fleet: LocalFleet;
  const { submit, finished, hosts, until, expectCorrect } = client(() => fleet);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'pattern', guestProgram('pattern'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const keptOn = async (snapshotId: string) => (await hosts()).filter((h) => h.parents?.some((p) => p.snapshotId === snapshotId));

  let first: JobRecord;

  it('reuse - a second job with the same init reuses the kept parent: no init, no new snapshot, no page fetched again', async () => {
    const spec = { function: 'pattern', clones: 6, init: b64({ mib: 16, seed: 11 }), input: b64({ verify: 'all' }) };
    first = await finished((await submit(spec)).id);
    await expectCorrect(first, 6);
    expect(first).toMatchObject({ parentReused: false, boot: 'fork' });
    // Its init ran: writing 16 MiB of the pattern takes whole milliseconds (a reused parent reports 0, below).
    expect(first.initMs).toBeGreaterThan(0);
    // Its host advertises it, idle (no job holds it).
    const [host] = await until('the parent advertised idle', async () => {
      const on = await keptOn(first.snapshotId!);
      return on.length === 1 && on[0]!.parents!.find((p) => p.snapshotId === first.snapshotId)!.holders === 0 ? on : undefined;
    });
    expect(host!.id).toBe(first.parentHost);
    expect(host!.parents!.find((p) => p.snapshotId === first.snapshotId)).toMatchObject({ tenant: 'default', function: 'pattern', moduleDigest: first.digest, idleSince: expect.any(Number) });
    // The clone hosts kept the pages they fetched.
    const cloneHosts = new Set(first.clonesDetail.map((c) => c.host!).filter((h) => h !== first.parentHost));
    for (const h of await hosts()) if (cloneHosts.has(h.id)) expect(h.pageCaches, h.id).toContain(first.snapshotId);

    const second = await finished((await submit(spec)).id);
    const outputs = await expectCorrect(second, 6);
    expect(second).toMatchObject({ parentReused: true, snapshotId: first.snapshotId, parentHost: first.parentHost, initMs: 0, snapshotMs: 0 });
    // Same parent memory as the first job's clones saw.
    const firstOutput = JSON.parse(Buffer.from(await (await fetch(`${fleet.url}/v1/jobs/${first.id}/clones/0/output`)).arrayBuffer()).toString()) as PatternOutput;
    expect(outputs[0]!.checksum).toBe(firstOutput.checksum);
    // Clones on hosts that already had the pages waited for none.
    const again = second.clonesDetail.filter((c) => cloneHosts.has(c.host!));
    expect(again.length).toBeGreaterThan(0);
    for (const c of again) expect(c.pages!.unicast + c.pages!.multicast, `clone ${c.index} on ${c.host}`).toBe(0);
  });

  it('another init - a different init input makes a new parent; keepParent false leaves nothing kept', async () => {
    const other = await finished((await submit({ function: 'pattern', clones: 3, init: b64({ mib: 16, seed: 12 }), input: b64({ verify: 'all' }) })).id);
    await expectCorrect(other, 3);
    expect(other.parentReused).toBe(false);
    expect(other.snapshotId).not.toBe(first.snapshotId);
    await until('both parents advertised', async () => ((await keptOn(other.snapshotId!)).length === 1 && (await keptOn(first.snapshotId!)).length === 1 ? true : undefined));

    const once = await finished((await submit({ function: 'pattern', clones: 3, init: b64({ mib: 16, seed: 13 }), input: b64({ verify: 'all' }), keepParent: false })).id);
    await expectCorrect(once, 3);
    expect(once.parentReused).toBe(false);
    await until('no host keeping or caching the one-off parent', async () =>
      (await hosts()).every((h) => !h.parents?.some((p) => p.snapshotId === once.snapshotId) && !h.pageCaches?.includes(once.snapshotId!)) ? true : undefined);
  });

  it('shared - two jobs with a new init at the same time share one parent', async () => {
    const spec = { function: 'pattern', clones: 4, init: b64({ mib: 16, seed: 14 }), input: b64({ verify: 'all' }) };
    const [a, b] = await Promise.all([submit(spec), submit(spec)]);
    const [da, db] = await Promise.all([finished(a.id), finished(b.id)]);
    await expectCorrect(da, 4);
    await expectCorrect(db, 4);
    expect(da.snapshotId).toBe(db.snapshotId);
    expect([da.parentReused, db.parentReused].sort()).toEqual([false, true]);
    // Both released it: idle, not freed.
    await until('the shared parent idle', async () => {
      const p = (await keptOn(da.snapshotId!))[0]?.parents?.find((x) => x.snapshotId === da.snapshotId);
      return p?.holders === 0 ? true : undefined;
    });
  });

  it('parent host lost - a job with the kept parent\'s init gets a new parent on a live host and the right result', async () => {
    const parent = fleet.hosts.find((h) => h.ready.hostId === first.parentHost);
    expect(parent, first.parentHost).toBeDefined();
    await parent!.kill();
    await until('the dead host gone from the fleet', async () => ((await hosts()).some((h) => h.id === first.parentHost) ? undefined : true));
    const job = await finished((await submit({ function: 'pattern', clones: 4, init: b64({ mib: 16, seed: 11 }), input: b64({ verify: 'all' }) })).id);
    await expectCorrect(job, 4);
    expect(job.parentReused).toBe(false);
    expect(job.parentHost).not.toBe(first.parentHost);
    expect(job.snapshotId).not.toBe(first.snapshotId);
  });
});

describe('kept parents - idle expiry', () => {
  let fleet: LocalFleet;
  const { submit, finished, hosts, until, expectCorrect } = client(() => fleet);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 2,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_PARENT_IDLE_MS: '1500', LOG_LEVEL: 'warn' },
      gatewayEnv: { LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'pattern', guestProgram('pattern'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('idle - an unused parent is freed after FLURRY_PARENT_IDLE_MS: no host advertises it or caches its pages; the next job makes a new one', async () => {
    const spec = { function: 'pattern', clones: 4, init: b64({ mib: 16, seed: 21 }), input: b64({ verify: 'all' }) };
    const job = await finished((await submit(spec)).id);
    await expectCorrect(job, 4);
    // Both hosts ran clones, so the other one cached pages.
    expect(new Set(job.clonesDetail.map((c) => c.host)).size).toBe(2);
    await until('the parent freed and its pages dropped', async () =>
      (await hosts()).every((h) => !h.parents?.some((p) => p.snapshotId === job.snapshotId) && !h.pageCaches?.includes(job.snapshotId!)) ? true : undefined);
    const next = await finished((await submit(spec)).id);
    await expectCorrect(next, 4);
    expect(next.parentReused).toBe(false);
    expect(next.snapshotId).not.toBe(job.snapshotId);
  });
});
