// Live migration of a service instance between host processes (docs/services.md,
// "Migration"): a real nats-server, the gateway and three worker hosts; a `room`
// instance is migrated while a client sends requests without pause.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { createHash } from 'node:crypto';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { startRoomFleet } from './helpers/room-fleet.js';

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await startRoomFleet();
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

interface Service { instances: { id: string; host: string; migrating?: unknown }[] }
interface Report {
  source: string; target: string; rounds: { pages: number; bytes: number; ms: number }[]; stopReason: string; finalPages: number;
  downtimeMs: number; totalMs: number; totalBytes: number; forwarded: number; mode?: string; fromParent?: boolean;
  verify?: { sourceMemory: string; targetMemory: string; memoryBytes: number };
}

const service = async (name: string) => (await json<{ service: Service }>(await api('GET', `/v1/services/${name}`), 200)).service;
const log = (r: Report) =>
  console.log(`[migrate] ${r.source} -> ${r.target} (${r.mode}): rounds ${JSON.stringify(r.rounds.map((x) => ({ pages: x.pages, ms: +x.ms.toFixed(1) })))}, stop ${r.stopReason}, final ${r.finalPages} pages, downtime ${r.downtimeMs.toFixed(1)} ms, total ${r.totalMs.toFixed(1)} ms, ${(r.totalBytes / 1024).toFixed(0)} KiB, ${r.forwarded} held and forwarded`);

describe('live migration between hosts', () => {
  const said: string[] = [];
  let seq = 0;

  it('migrate - a client loop without pause gets every answer in order; the state arrives whole on the target', async () => {
    await json(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    expect(await json(await api('POST', '/svc/room/join', { name: 'ada' }), 200)).toEqual({ member: 'ada', members: ['ada'] });
    // Some MiB of state (48 messages of 64 Ki characters, UTF-16): round 0 takes several page messages.
    for (let i = 0; i < 48; i++) {
      const text = `${i}`.padEnd(65536, 'x');
      said.push(text);
      expect(await json(await api('POST', '/svc/room/say', { name: 'ada', text }), 200)).toEqual({ seq: ++seq });
    }
    const [inst] = (await service('room')).instances;
    const before = inst!.host;

    let running = true;
    let k = 0;
    const hosts: string[] = [];
    const loop = (async () => {
      while (running) {
        const text = `m${k++}`;
        said.push(text);
        const res = await api('POST', '/svc/room/say', { name: 'ada', text });
        hosts.push(res.headers.get('x-flurry-host') ?? '');
        expect(await json(res, 200)).toEqual({ seq: ++seq });
      }
    })();
    while (k < 20) await new Promise((r) => setTimeout(r, 2));
    const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { verify: true }), 200)).migration;
    const after = k;
    while (k < after + 20) await new Promise((r) => setTimeout(r, 2));
    running = false;
    await loop;
    log(report);

    expect(report.source).toBe(before);
    // The target's memory at the commit is the source's at the stop, byte for byte.
    expect(report.verify?.sourceMemory).toMatch(/^[0-9a-f]{64}$/);
    expect(report.verify!.targetMemory).toBe(report.verify!.sourceMemory);
    expect(report.target).not.toBe(before);
    expect(report.rounds.length).toBeGreaterThanOrEqual(1);
    expect(report.rounds[0]!.bytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(report.downtimeMs).toBeGreaterThan(0);
    expect(hosts[0]).toBe(before);
    expect(hosts.at(-1)).toBe(report.target);
    // The instance now lives on the target (record and answers), same id.
    expect((await service('room')).instances).toEqual([expect.objectContaining({ id: inst!.id, host: report.target })]);
    const res = await api('GET', '/svc/room/state');
    expect(res.headers.get('x-flurry-host')).toBe(report.target);
    expect(res.headers.get('x-flurry-instance')).toBe(inst!.id);
    const state = await json(res, 200);
    expect(state).toMatchObject({ members: ['ada'], count: said.length, seq: said.length });
    expect(hosts.length).toBe(k);

    // The same requests on a fresh instance lead to the same state digest.
    await json(await api('POST', '/v1/services', { name: 'replay', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/replay/join', { name: 'ada' }), 200);
    for (const text of said) await json(await api('POST', '/svc/replay/say', { name: 'ada', text }), 200);
    expect((await json(await api('GET', '/svc/replay/state'), 200)).digest).toBe(state.digest);
  }, 60_000);

  it('migrate to a named target and back; unknown instance and bad target are refused', async () => {
    const [inst] = (await service('room')).instances;
    const other = ['host-1', 'host-2', 'host-3'].find((h) => h !== inst!.host)!;
    const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { target: other }), 200)).migration;
    log(report);
    expect(report).toMatchObject({ source: inst!.host, target: other });
    const res = await api('POST', '/svc/room/say', { name: 'ada', text: 'moved' });
    expect(res.headers.get('x-flurry-host')).toBe(other);
    said.push('moved');
    expect(await json(res, 200)).toEqual({ seq: ++seq });
    await json(await api('POST', `/v1/instances/${inst!.id}/migrate`, { target: other }), 400);
    await json(await api('POST', '/v1/instances/inst_nope/migrate', {}), 404);
  }, 30_000);

  it('a target killed (SIGKILL) during the migration aborts it; the instance keeps serving on the source, no request lost', async () => {
    const [inst] = (await service('room')).instances;
    const victim = ['host-1', 'host-2', 'host-3'].find((h) => h !== inst!.host)!;
    const proc = fleet.hosts[Number(victim.slice(5)) - 1]!;
    let running = true;
    let k = 0;
    const hosts: string[] = [];
    const loop = (async () => {
      while (running) {
        const text = `k${k++}`;
        said.push(text);
        const res = await api('POST', '/svc/room/say', { name: 'ada', text });
        hosts.push(res.headers.get('x-flurry-host') ?? '');
        expect(await json(res, 200)).toEqual({ seq: ++seq });
      }
    })();
    while (k < 5) await new Promise((r) => setTimeout(r, 2));
    const seen = proc.lines.length;
    const migrating = api('POST', `/v1/instances/${inst!.id}/migrate`, { target: victim });
    // Killed once it has started receiving (prepared), while the pages travel.
    while (!proc.lines.slice(seen).some((l) => l.includes('receiving service instance'))) await new Promise((r) => setTimeout(r, 1));
    proc.process.kill('SIGKILL');
    const res = await migrating;
    const text = await res.text();
    console.log(`[migrate] target killed: ${res.status} ${text}`);
    expect(res.status, text).toBe(503);
    // Found gone by the page stream's connection closing, the migration's probe or the next step (no
    // responders), or by a probe that was in flight at the kill and timed out (the heartbeat) — not by a step
    // timing out.
    expect(text).toMatch(/page stream to target host \S+ broke|no responders|stopped answering the migration's heartbeat/);
    const after = k;
    while (k < after + 5) await new Promise((r) => setTimeout(r, 2));
    running = false;
    await loop;
    expect(new Set(hosts)).toEqual(new Set([inst!.host]));
    const state = await json(await api('GET', '/svc/room/state'), 200);
    expect(state).toMatchObject({ members: ['ada'], count: said.length, seq: said.length });
    expect((await service('room')).instances).toEqual([expect.objectContaining({ id: inst!.id, host: inst!.host })]);
  }, 40_000);
});

describe('services with an init input, stop-and-copy and guards', () => {
  const ballast = (mib: number) => Buffer.from(JSON.stringify({ ballastMiB: mib })).toString('base64');
  const big = { name: 'big', function: 'room', min: 1, max: 1, init: ballast(24) };
  const liveHosts = async () => (await json<{ hosts: { id: string }[] }>(await api('GET', '/v1/hosts'), 200)).hosts.map((h) => h.id);

  beforeAll(async () => {
    // The kill test above took a host away: three live hosts again, the killed one no longer listed.
    await fleet.addHost('host-4');
    for (let live = await liveHosts(); !(live.includes('host-4') && live.length === 3); live = await liveHosts()) await new Promise((r) => setTimeout(r, 50));
  }, 60_000);

  it('init - instances are clones of a parent booted with the init input; it migrates (pre-copy, then stop-and-copy) with its state intact', async () => {
    const created = await json<{ service: { init: string } }>(await api('POST', '/v1/services', big), 201);
    expect(created.service.init).toBe(big.init);
    const setup = [{ path: '/join', body: { name: 'ada' } }, { path: '/churn', body: { bytes: 3 * 1024 * 1024 } }, { path: '/say', body: { name: 'ada', text: 'before' } }];
    for (const r of setup) await json(await api('POST', `/svc/big${r.path}`, r.body), 200);
    const before = await json(await api('GET', '/svc/big/state'), 200);
    expect(before).toMatchObject({ ballastBytes: 24 * 1024 * 1024, churned: 3 * 1024 * 1024, seq: 1 });

    // Requests keep coming during both migrations; each must be answered in order.
    const sent: { path: string; body: unknown }[] = [];
    let running = true;
    let seq = 1;
    const loop = (async () => {
      for (let k = 0; running; k++) {
        const r = k % 2 === 0 ? { path: '/say', body: { name: 'ada', text: `x${k}` } } : { path: '/churn', body: { bytes: 64 * 1024 } };
        sent.push(r);
        const answer = await json(await api('POST', `/svc/big${r.path}`, r.body), 200);
        if (r.path === '/say') expect(answer).toEqual({ seq: ++seq });
      }
    })();
    const [inst] = (await service('big')).instances;
    let pre: Report;
    let stopCopy: Report;
    try {
      pre = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { verify: true }), 200)).migration;
      log(pre);
      stopCopy = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { maxRounds: 0, verify: true }), 200)).migration;
      log(stopCopy);
    } finally {
      running = false;
      await loop;
    }
    // Both hosts booted the same parent (same digest): with the native pager, only what the instance wrote since
    // its fork moves (the 3 MiB churned first among it), else every non-zero page.
    const ballastPages = (24 * 1024 * 1024) / 4096;
    expect(stopCopy.fromParent).toBe(pre.fromParent);
    expect(pre.rounds[0]!.pages).toBeGreaterThanOrEqual(pre.fromParent ? (3 * 1024 * 1024) / 4096 : ballastPages);
    if (pre.fromParent) expect(pre.rounds[0]!.pages).toBeLessThan(ballastPages / 2);
    // Stop-and-copy: no round before the stop; every page to send copied while it was stopped.
    expect(stopCopy).toMatchObject({ stopReason: 'stop-and-copy', rounds: [], source: pre.target });
    expect(stopCopy.finalPages).toBeGreaterThanOrEqual(pre.fromParent ? (3 * 1024 * 1024) / 4096 : ballastPages);
    // Both ways, with pages written by /churn during the rounds: the memory arrived whole.
    for (const r of [pre, stopCopy]) expect(r.verify!.targetMemory, JSON.stringify(r.verify)).toBe(r.verify!.sourceMemory);
    expect(pre.verify!.memoryBytes).toBeGreaterThan(24 * 1024 * 1024);
    const res = await api('GET', '/svc/big/state');
    expect(res.headers.get('x-flurry-host')).toBe(stopCopy.target);
    const after = await json(res, 200);
    expect(after).toMatchObject({ members: ['ada'], ballastBytes: 24 * 1024 * 1024, seq });

    // The same requests on a fresh instance of the same parent lead to the same state.
    await json(await api('POST', '/v1/services', { ...big, name: 'big-replay' }), 201);
    for (const r of [...setup, ...sent]) await json(await api('POST', `/svc/big-replay${r.path}`, r.body), 200);
    expect((await json(await api('GET', '/svc/big-replay/state'), 200)).digest).toBe(after.digest);
    await json(await api('DELETE', '/v1/services/big-replay'), 200);

    // The init input belongs to the service for good; bad input is refused.
    expect((await json(await api('PATCH', '/v1/services/big', { init: ballast(1) }), 400)).error.message).toMatch(/cannot change "init"/);
    expect((await json(await api('POST', '/v1/services', { ...big, name: 'bad', init: 'not base64!' }), 400)).error.message).toMatch(/"init" is not valid base64/);
    expect((await json(await api('POST', '/v1/services', { name: 'bad', function: 'room', initData: 'no-such-blob' }), 404)).error.message).toMatch(/no data "no-such-blob"/);
    expect((await json(await api('POST', `/v1/instances/${inst!.id}/migrate`, { maxRounds: -1 }), 400)).error.message).toMatch(/maxRounds/);
  }, 120_000);

  it('initData - a service whose init input is an upload: its instance clones that parent and migrates whole, the target reading the same upload', async () => {
    const upload = await fetch(`${fleet.url}/v1/data/room-init.json`, { method: 'PUT', body: JSON.stringify({ ballastMiB: 8 }) });
    expect(upload.status, await upload.clone().text()).toBe(201);
    const created = await json<{ service: { initData: string; instances: { id: string; host: string }[] } }>(await api('POST', '/v1/services', { name: 'uploaded', function: 'room', initData: 'room-init.json' }), 201);
    expect(created.service.initData).toBe('room-init.json');
    expect((await json(await api('POST', '/v1/services', { name: 'both', function: 'room', init: ballast(1), initData: 'room-init.json' }), 400)).error.message).toMatch(/not both/);
    await json(await api('POST', '/svc/uploaded/join', { name: 'ada' }), 200);
    await json(await api('POST', '/svc/uploaded/say', { name: 'ada', text: 'from an uploaded init' }), 200);
    const before = await json(await api('GET', '/svc/uploaded/state'), 200);
    expect(before).toMatchObject({ ballastBytes: 8 * 1024 * 1024, seq: 1 });
    const [inst] = (await service('uploaded')).instances;
    const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { verify: true }), 200)).migration;
    expect(report.target).not.toBe(inst!.host);
    expect(report.verify!.targetMemory).toBe(report.verify!.sourceMemory);
    expect(await json(await api('GET', '/svc/uploaded/state'), 200)).toEqual(before);
    await json(await api('DELETE', '/v1/services/uploaded'), 200);
  }, 120_000);

  it('guard - a second migration of an instance while one is under way is refused with 409; the first completes', async () => {
    const [inst] = (await service('big')).instances;
    const [a, b] = await Promise.all([api('POST', `/v1/instances/${inst!.id}/migrate`, {}), api('POST', `/v1/instances/${inst!.id}/migrate`, {})]);
    const answers = [{ status: a.status, text: await a.text() }, { status: b.status, text: await b.text() }];
    console.log(`[migrate] two at once: ${answers.map((x) => x.status).join(', ')}`);
    expect(answers.map((x) => x.status).sort()).toEqual([200, 409]);
    expect(answers.find((x) => x.status === 409)!.text).toMatch(/being migrated already/);
    expect(a.headers.get('x-flurry-error') ?? b.headers.get('x-flurry-error')).toBe('conflict');
    const moved = JSON.parse(answers.find((x) => x.status === 200)!.text).migration as Report;
    const now = (await service('big')).instances;
    expect(now).toEqual([expect.objectContaining({ id: inst!.id, host: moved.target })]);
    expect(now[0]).not.toHaveProperty('migrating');
    expect((await json(await api('GET', '/svc/big/state'), 200)).ballastBytes).toBe(24 * 1024 * 1024);
  }, 60_000);

  it('standby - a service\'s own parent is kept warm and hashed where its instance would migrate to; a migration without a target goes there and back', async () => {
    const init = ballast(8);
    const initDigest = `sha256:${createHash('sha256').update(Buffer.from(init, 'base64')).digest('hex')}`;
    await json(await api('POST', '/v1/services', { ...big, name: 'warm', init }), 201);
    await json(await api('POST', '/svc/warm/join', { name: 'ada' }), 200);
    const [inst] = (await service('warm')).instances;
    type HostParents = { id: string; serviceParents?: { initDigest: string }[] };
    const holders = async () => (await json<{ hosts: HostParents[] }>(await api('GET', '/v1/hosts'), 200)).hosts.filter((h) => h.serviceParents?.some((p) => p.initDigest === initDigest)).map((h) => h.id);
    // The instance's own host and at least one other: the standby (holds asked for before the first was listed may
    // make two; they settle within a heartbeat or two of the first).
    let seen = '';
    await until('the standby parents to settle on other hosts', async () => {
      const now = JSON.stringify((await holders()).filter((h) => h !== inst!.host).sort());
      const settled = now !== '[]' && now === seen;
      seen = now;
      if (!settled) await new Promise((r) => setTimeout(r, 1500));
      return settled ? true : undefined;
    }, 60_000, async () => `holders ${JSON.stringify(await holders())}`);
    const before = await holders();
    expect(before).toContain(inst!.host);
    const there = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, {}), 200)).migration;
    log(there);
    expect(there.source).toBe(inst!.host);
    expect(before).toContain(there.target);
    // Back: the former source still holds the parent (it lingers after its last instance), so a holder is chosen again.
    const holding = await holders();
    expect(holding).toContain(inst!.host);
    const back = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, {}), 200)).migration;
    expect(back).toMatchObject({ source: there.target, fromParent: there.fromParent });
    expect(holding).toContain(back.target);
    expect(await json(await api('GET', '/svc/warm/state'), 200)).toMatchObject({ members: ['ada'], ballastBytes: 8 * 1024 * 1024 });
    await json(await api('DELETE', '/v1/services/warm'), 200);
  }, 120_000);

  it('heartbeat - a target that stops answering (SIGSTOP) is given up by the migration heartbeat; the source keeps serving', async () => {
    await json(await api('POST', '/v1/services', { name: 'huge', function: 'room', min: 1, max: 1, init: ballast(96) }), 201);
    await json(await api('POST', '/svc/huge/join', { name: 'ada' }), 200);
    const [inst] = (await service('huge')).instances;
    const victim = (await liveHosts()).find((h) => h !== inst!.host)!;
    const proc = fleet.hosts[Number(victim.slice(5)) - 1]!;
    const seen = proc.lines.length;
    let over = false;
    const migrating = api('POST', `/v1/instances/${inst!.id}/migrate`, { target: victim }).finally(() => (over = true));
    while (!over && !proc.lines.slice(seen).some((l) => l.includes('receiving service instance'))) await new Promise((r) => setTimeout(r, 1));
    proc.process.kill('SIGSTOP');
    let text: string;
    let status: number;
    try {
      const res = await migrating;
      status = res.status;
      text = await res.text();
    } finally {
      proc.process.kill('SIGCONT');
    }
    console.log(`[migrate] target stopped: ${status} ${text}`);
    expect(status, text).toBe(503);
    expect(text).toMatch(/stopped answering the migration's heartbeat/);
    const res = await api('POST', '/svc/huge/say', { name: 'ada', text: 'still here' });
    expect(res.headers.get('x-flurry-host')).toBe(inst!.host);
    expect(await json(res, 200)).toEqual({ seq: 1 });
    expect((await service('huge')).instances).toEqual([expect.objectContaining({ id: inst!.id, host: inst!.host })]);
    expect((await service('huge')).instances[0]).not.toHaveProperty('migrating');
    await json(await api('DELETE', '/v1/services/huge'), 200);
  }, 90_000);

  it('source lost - a source killed mid-migration fails the migration once its heartbeats stop; the mark is cleared and the service gets a new instance', async () => {
    await json(await api('POST', '/v1/services', { name: 'lost', function: 'room', min: 1, max: 1, init: ballast(96) }), 201);
    await json(await api('POST', '/svc/lost/join', { name: 'ada' }), 200);
    const [inst] = (await service('lost')).instances;
    const target = (await liveHosts()).find((h) => h !== inst!.host)!;
    const [source, receiver] = [inst!.host, target].map((id) => fleet.hosts[Number(id.slice(5)) - 1]!);
    const seen = receiver!.lines.length;
    let over = false;
    const migrating = api('POST', `/v1/instances/${inst!.id}/migrate`, { target }).finally(() => (over = true));
    while (!over && !receiver!.lines.slice(seen).some((l) => l.includes('receiving service instance'))) await new Promise((r) => setTimeout(r, 1));
    source!.process.kill('SIGKILL');
    const res = await migrating;
    const text = await res.text();
    console.log(`[migrate] source killed: ${res.status} ${text}`);
    expect(res.status, text).toBe(503);
    expect(text).toMatch(/stopped heartbeating/);
    expect((await service('lost')).instances.every((i) => i.migrating === undefined)).toBe(true);
    // Its state went with its host: the next request is held while a new instance starts, and answered.
    const again = await api('POST', '/svc/lost/join', { name: 'bob' });
    expect(await json(again, 200)).toEqual({ member: 'bob', members: ['bob'] });
    expect(again.headers.get('x-flurry-host')).not.toBe(inst!.host);
    expect((await service('lost')).instances).toEqual([expect.objectContaining({ host: again.headers.get('x-flurry-host') })]);
  }, 90_000);
});
