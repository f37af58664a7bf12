// Live migration of a service instance between host processes (docs/services.md,
// "Migration"): a real nats-server, the gateway and three worker hosts; a `room`
// instance is migrated while a client sends requests without pause.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { startRoomFleet } from './helpers/room-fleet.js';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startRoomFleet();
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

interface Service { instances: { id: string; host: string }[] }
interface Report {
  source: string; target: string; rounds: { pages: number; bytes: number; ms: number }[]; stopReason: string; finalPages: number;
  downtimeMs: number; totalMs: number; totalBytes: number; forwarded: number; mode?: string;
}

const api = (method: string, path: string, body?: unknown) =>
  fetch(`${fleet.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

async function json<T = any>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
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
    const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, {}), 200)).migration;
    const after = k;
    while (k < after + 20) await new Promise((r) => setTimeout(r, 2));
    running = false;
    await loop;
    log(report);

    expect(report.source).toBe(before);
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
