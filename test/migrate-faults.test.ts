// Migration faults between host processes (docs/services.md, "Migration",
// failure cases): a real nats-server, the gateway and three worker hosts; a
// `room` instance keeps answering a client while a migration of it is cut
// short by a killed target (while pages travel, and while the instance is
// stopped for stop-and-copy) or a killed source. After each fault exactly one
// host lists the instance (or, its state lost with its host, none lists it
// and one lists the new one), the room's state is the replay of the
// requests answered, and every commit that happened had the target write as
// many pages as the source sent. (A commit whose answer is lost is provoked
// in worker-host/src/migration/nats-migration.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { gatewayApi, json } from './helpers/gateway-api.js';
import { startRoomFleet } from './helpers/room-fleet.js';

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await startRoomFleet();
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

interface Report { source: string; target: string; rounds: unknown[]; pagesSent: number; pagesApplied?: number; stopReason: string; forwarded: number }
interface HostView { id: string; instances?: { instanceId: string }[] }
interface Sent { path: string; body: unknown }

const ballast = (mib: number) => Buffer.from(JSON.stringify({ ballastMiB: mib })).toString('base64');
const instanceOf = async (service: string) => (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', `/v1/services/${service}`))).service.instances;
/** Host `host-N` is the fleet's Nth process (hosts added later are named on). */
const proc = (hostId: string) => fleet.hosts[Number(hostId.slice(5)) - 1]!;
const liveHosts = async () => (await json<{ hosts: HostView[] }>(await api('GET', '/v1/hosts'))).hosts;

/** A new host in place of a killed one: three live hosts again, the new one among them. */
async function replaceHost(hostId: string): Promise<void> {
  await fleet.addHost(hostId);
  const deadline = Date.now() + 20_000;
  for (let live = await liveHosts(); !(live.some((h) => h.id === hostId) && live.length === 3); live = await liveHosts()) {
    if (Date.now() > deadline) throw new Error(`the gateway lists ${JSON.stringify(live.map((h) => h.id))}, not ${hostId} and two others`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
/** Every commit that happened in this file: the invariant is checked on all of them. */
const commits: Report[] = [];

/** Waits until the host records (heartbeats) list `instanceId` on exactly `hosts`; the last listing is the failure message. */
async function expectListedOn(instanceId: string, hosts: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const listing = (await liveHosts()).filter((h) => h.instances?.some((i) => i.instanceId === instanceId)).map((h) => h.id).sort();
    if (JSON.stringify(listing) === JSON.stringify([...hosts].sort())) return;
    if (Date.now() > deadline) expect(listing, `hosts listing ${instanceId}`).toEqual(hosts);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A client sending requests to `service` without pause, each answer checked; `stop` ends it and resolves with what was answered, in order. */
function client(service: string, next: (k: number) => Sent, firstSeq: number) {
  const answered: Sent[] = [];
  const hosts: string[] = [];
  let running = true;
  let seq = firstSeq;
  const loop = (async () => {
    for (let k = 0; running; k++) {
      const r = next(k);
      const res = await api('POST', `/svc/${service}${r.path}`, r.body);
      const answer = await json(res, 200);
      if (r.path === '/say') expect(answer).toEqual({ seq: ++seq });
      answered.push(r);
      hosts.push(res.headers.get('x-flurry-host') ?? '');
    }
  })();
  return {
    answered,
    hosts,
    count: () => answered.length,
    async stop() {
      running = false;
      await loop;
      return { answered, hosts };
    },
  };
}

/** The state digest of `service` equals a fresh instance's (same function and init) after the same requests. */
async function expectReplayed(service: string, create: Record<string, unknown>, requests: Sent[]): Promise<Record<string, any>> {
  const state = await json(await api('GET', `/svc/${service}/state`));
  const replay = `${service}-replay`;
  await json(await api('POST', '/v1/services', { ...create, name: replay }), 201);
  for (const r of requests) await json(await api('POST', `/svc/${replay}${r.path}`, r.body), 200);
  expect((await json(await api('GET', `/svc/${replay}/state`))).digest).toBe(state.digest);
  await json(await api('DELETE', `/v1/services/${replay}`), 200);
  return state;
}

/**
 * Starts a migration and SIGKILLs `victim` once `watched` logs that the target has started receiving; `failure`
 * is the source's log line of the failed migration (it says whether the source still holds the instance).
 */
async function migrateAndKill(instanceId: string, body: Record<string, unknown>, watched: string, victim: string, source: string): Promise<{ status: number; text: string; failure?: Record<string, unknown> }> {
  const receiver = proc(watched);
  const seen = receiver.lines.length;
  const sourceSeen = proc(source).lines.length;
  let over = false;
  const migrating = api('POST', `/v1/instances/${instanceId}/migrate`, body).finally(() => (over = true));
  while (!over && !receiver.lines.slice(seen).some((l) => l.includes('receiving service instance'))) await new Promise((r) => setTimeout(r, 1));
  proc(victim).process.kill('SIGKILL');
  const res = await migrating;
  // The line travels through the source's stdout, the answer through NATS and the gateway: either may come first.
  const logged = () => proc(source).lines.slice(sourceSeen).find((l) => l.includes('service instance migration failed'));
  for (const deadline = Date.now() + 5000; res.status !== 200 && source !== victim && !logged() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  const failure = logged();
  return { status: res.status, text: await res.text(), failure: failure ? JSON.parse(failure) : undefined };
}

async function migrate(instanceId: string, body: Record<string, unknown>): Promise<Report> {
  const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${instanceId}/migrate`, body), 200)).migration;
  commits.push(report);
  return report;
}

describe('migration faults - one owner, the state whole', () => {
  const room = { name: 'room', function: 'room', min: 1, max: 1 };
  const setup: Sent[] = [{ path: '/join', body: { name: 'ada' } }];
  const history: Sent[] = [...setup];
  const say = (tag: string) => (k: number): Sent => ({ path: '/say', body: { name: 'ada', text: `${tag}${k}` } });

  it('commit - pre-copy and stop-and-copy under load: pages sent = pages applied in each report, one host lists the instance', async () => {
    await json(await api('POST', '/v1/services', room), 201);
    for (const r of setup) await json(await api('POST', `/svc/room${r.path}`, r.body));
    // Some MiB of messages: round 0 takes several page messages.
    for (let i = 0; i < 24; i++) {
      const r = { path: '/say', body: { name: 'ada', text: `${i}`.padEnd(65536, 'x') } };
      await json(await api('POST', '/svc/room/say', r.body));
      history.push(r);
    }
    const [inst] = await instanceOf('room');
    const c = client('room', say('a'), 24);
    while (c.count() < 10) await new Promise((r) => setTimeout(r, 2));
    const pre = await migrate(inst!.id, {});
    const stopCopy = await migrate(inst!.id, { maxRounds: 0 });
    const mark = c.count();
    while (c.count() < mark + 10) await new Promise((r) => setTimeout(r, 2));
    history.push(...(await c.stop()).answered);
    console.log(`[migrate-faults] pre-copy ${pre.source} -> ${pre.target}: ${pre.pagesSent} pages sent, ${pre.pagesApplied} applied; stop-and-copy ${stopCopy.source} -> ${stopCopy.target}: ${stopCopy.pagesSent} sent, ${stopCopy.pagesApplied} applied`);
    // 24 messages of 128 KiB (UTF-16) at least.
    expect(pre.pagesSent).toBeGreaterThan(24 * 32);
    expect(pre.pagesApplied).toBe(pre.pagesSent);
    expect(stopCopy).toMatchObject({ stopReason: 'stop-and-copy', source: pre.target, pagesApplied: stopCopy.pagesSent });
    await expectListedOn(inst!.id, [stopCopy.target]);
    await expectReplayed('room', room, history);
  }, 90_000);

  it('target killed while pages travel - 503; the source keeps the instance and serves throughout; one host lists it; the state is the replay', async () => {
    const [inst] = await instanceOf('room');
    const victim = (await liveHosts()).map((h) => h.id).find((h) => h !== inst!.host)!;
    const c = client('room', say('b'), history.filter((r) => r.path === '/say').length);
    while (c.count() < 5) await new Promise((r) => setTimeout(r, 2));
    const { status, text, failure } = await migrateAndKill(inst!.id, { target: victim }, victim, victim, inst!.host);
    const mark = c.count();
    while (c.count() < mark + 5) await new Promise((r) => setTimeout(r, 2));
    const { answered, hosts } = await c.stop();
    history.push(...answered);
    console.log(`[migrate-faults] target ${victim} killed: ${status} ${text}`);
    expect(status, text).toBe(503);
    expect(failure).toMatchObject({ instanceId: inst!.id, target: victim, held: true });
    expect(new Set(hosts)).toEqual(new Set([inst!.host]));
    await expectListedOn(inst!.id, [inst!.host]);
    expect(await instanceOf('room')).toEqual([expect.objectContaining({ id: inst!.id, host: inst!.host })]);
    await expectReplayed('room', room, history);
    // And it migrates again, to the host that replaces the dead one.
    await replaceHost('host-4');
    const again = await migrate(inst!.id, { target: 'host-4' });
    expect(again.pagesApplied).toBe(again.pagesSent);
    await expectListedOn(inst!.id, ['host-4']);
    await expectReplayed('room', room, history);
  }, 90_000);

  it('target killed during stop-and-copy - the instance is stopped when the target dies; the source resumes, answers the held requests itself, in order', async () => {
    const big = { name: 'big', function: 'room', min: 1, max: 1, init: ballast(96) };
    await json(await api('POST', '/v1/services', big), 201);
    const bigHistory: Sent[] = [{ path: '/join', body: { name: 'ada' } }];
    await json(await api('POST', '/svc/big/join', bigHistory[0]!.body));
    const [inst] = await instanceOf('big');
    const victim = (await liveHosts()).map((h) => h.id).find((h) => h !== inst!.host)!;
    const c = client('big', (k) => (k % 2 === 0 ? say('c')(k) : { path: '/churn', body: { bytes: 65536 } }), 0);
    while (c.count() < 5) await new Promise((r) => setTimeout(r, 2));
    // Stop-and-copy only: the source stops before the target is even prepared, so the kill finds it stopped.
    const { status, text, failure } = await migrateAndKill(inst!.id, { target: victim, maxRounds: 0 }, victim, victim, inst!.host);
    const mark = c.count();
    while (c.count() < mark + 5) await new Promise((r) => setTimeout(r, 2));
    const { answered, hosts } = await c.stop();
    bigHistory.push(...answered);
    console.log(`[migrate-faults] target ${victim} killed during stop-and-copy: ${status} ${text}`);
    expect(status, text).toBe(503);
    expect(failure).toMatchObject({ instanceId: inst!.id, target: victim, held: true });
    expect(new Set(hosts)).toEqual(new Set([inst!.host]));
    await expectListedOn(inst!.id, [inst!.host]);
    await expectReplayed('big', big, bigHistory);
    await json(await api('DELETE', '/v1/services/big'), 200);
    await replaceHost('host-5');
  }, 120_000);

  it('source killed mid-migration - the target never commits: no host lists the instance once the source is gone; the next request makes one new instance, listed by one host', async () => {
    const lost = { name: 'lost', function: 'room', min: 1, max: 1, init: ballast(96) };
    await json(await api('POST', '/v1/services', lost), 201);
    await json(await api('POST', '/svc/lost/join', { name: 'ada' }));
    const [inst] = await instanceOf('lost');
    const target = (await liveHosts()).map((h) => h.id).find((h) => h !== inst!.host)!;
    const { status, text } = await migrateAndKill(inst!.id, { target }, target, inst!.host, inst!.host);
    console.log(`[migrate-faults] source ${inst!.host} killed: ${status} ${text}`);
    expect(status, text).toBe(503);
    // The target dropped nothing it serves: it never adopted the instance.
    await expectListedOn(inst!.id, []);
    const again = await api('POST', '/svc/lost/join', { name: 'bob' });
    expect(await json(again)).toEqual({ member: 'bob', members: ['bob'] });
    const [made] = await instanceOf('lost');
    expect(made!.id).not.toBe(inst!.id);
    await expectListedOn(made!.id, [again.headers.get('x-flurry-host')!]);
    await expectReplayed('lost', lost, [{ path: '/join', body: { name: 'bob' } }]);
  }, 120_000);

  it('invariant - every commit that happened had the target write as many pages as the source sent', () => {
    expect(commits.length).toBeGreaterThanOrEqual(3);
    for (const r of commits) expect(r.pagesApplied, JSON.stringify(r)).toBe(r.pagesSent);
  });
});
