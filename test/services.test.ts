// Services end to end (docs/services.md): a real nats-server, the gateway and
// three worker host processes; a stateful `room` service with persistent
// instances, sticky routing, scaling by PATCH, and deletion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
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

interface Instance { id: string; host: string; inFlight: number }
interface Service { name: string; function: string; min: number; max: number; targetConcurrency: number; instances: Instance[] }

async function service(name: string): Promise<Service> {
  return (await json<{ service: Service }>(await api('GET', `/v1/services/${name}`), 200)).service;
}

describe('services', () => {
  it('create - a room service with min 2; requests sent at once are held until the instances start', async () => {
    const created = await json<{ service: Service }>(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 2 }), 201);
    expect(created.service).toMatchObject({ name: 'room', function: 'room', min: 2, max: 2, targetConcurrency: 8 });
    // Sent right away, while the first instances start: held, not refused.
    const early = await api('GET', '/svc/room/state');
    expect((await json(early, 200)).members).toEqual([]);
    // The request is answered by the first instance up; the second is routed to once it is written.
    const svc = await until('two instances', async () => {
      const s = await service('room');
      return s.instances.length === 2 ? s : undefined;
    }, 30_000);
    expect(svc.instances).toHaveLength(2);
    expect(new Set(svc.instances.map((i) => i.host)).size).toBe(2);
    const list = await json<{ services: Service[] }>(await api('GET', '/v1/services'), 200);
    expect(list.services.map((s) => s.name)).toContain('room');
  });

  it('state - join, say and messages persist on one instance (routing key)', async () => {
    const h = { 'x-flurry-route': 'client-a' };
    const join = await api('POST', '/svc/room/join', { name: 'ada' }, h);
    const instance = join.headers.get('x-flurry-instance');
    expect(await json(join, 200)).toEqual({ member: 'ada', members: ['ada'] });
    expect(await json(await api('POST', '/svc/room/say', { name: 'ada', text: 'hi' }, h), 200)).toEqual({ seq: 1 });
    expect(await json(await api('POST', '/svc/room/say', { name: 'ada', text: 'again' }, h), 200)).toEqual({ seq: 2 });
    const msgs = await api('GET', '/svc/room/messages?since=0', undefined, h);
    expect(msgs.headers.get('x-flurry-instance')).toBe(instance);
    expect(await json(msgs, 200)).toEqual({ messages: [{ seq: 1, name: 'ada', text: 'hi' }, { seq: 2, name: 'ada', text: 'again' }], next: 2 });
    // A page at a time: `next` says where the next page starts.
    expect(await json(await api('GET', '/svc/room/messages?since=0&limit=1', undefined, h), 200)).toEqual({ messages: [{ seq: 1, name: 'ada', text: 'hi' }], next: 1 });
    expect(await json(await api('GET', '/svc/room/messages?since=1&limit=1', undefined, h), 200)).toEqual({ messages: [{ seq: 2, name: 'ada', text: 'again' }], next: 2 });
    expect((await api('GET', '/svc/room/messages?limit=0', undefined, h)).status).toBe(400);
  });

  it('sticky - a routing key keeps a client on one instance; different keys spread over both', async () => {
    const seen = new Map<string, string>();
    for (let k = 0; k < 16; k++) {
      const key = `user-${k}`;
      const first = await api('POST', '/svc/room/join', { name: key }, { 'x-flurry-route': key });
      const inst = first.headers.get('x-flurry-instance')!;
      expect((await json(first, 200)).members).toContain(key);
      // The cookie works as well as the header, and the client sees its own state.
      const again = await api('GET', '/svc/room/state', undefined, { cookie: `theme=dark; flurry-route=${key}` });
      expect(again.headers.get('x-flurry-instance')).toBe(inst);
      expect((await json(again, 200)).members).toContain(key);
      seen.set(key, inst);
    }
    const instances = (await service('room')).instances.map((i) => i.id);
    expect(new Set(seen.values())).toEqual(new Set(instances));
    // Each instance holds exactly the members routed to it.
    for (const id of instances) {
      const mine = [...seen].filter(([, i]) => i === id).map(([k]) => k);
      const key = mine[0];
      const state = await json(await api('GET', '/svc/room/state', undefined, { 'x-flurry-route': key }), 200);
      for (const m of mine) expect(state.members).toContain(m);
      for (const [k, i] of seen) if (i !== id) expect(state.members).not.toContain(k);
    }
  });

  it('balance - without a key, requests spread over the instances', async () => {
    const used = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await api('GET', '/svc/room/state');
      expect(res.status).toBe(200);
      used.add(res.headers.get('x-flurry-instance')!);
      await res.arrayBuffer();
    }
    expect(used.size).toBe(2);
  });

  it('patch - min 3 adds an instance on the third host', async () => {
    const before = await service('room');
    const patched = await json<{ service: Service }>(await api('PATCH', '/v1/services/room', { min: 3 }), 200);
    expect(patched.service).toMatchObject({ min: 3, max: 3 });
    expect(patched.service.instances).toHaveLength(3);
    expect(new Set(patched.service.instances.map((i) => i.host)).size).toBe(3);
    for (const i of before.instances) expect(patched.service.instances.map((x) => x.id)).toContain(i.id);
    const added = patched.service.instances.find((i) => !before.instances.some((b) => b.id === i.id))!;
    expect(before.instances.map((i) => i.host)).not.toContain(added.host);
    // Rendezvous hashing: a key either stays on its instance (and its state) or moves to the new one.
    const res = await api('GET', '/svc/room/messages?since=0', undefined, { 'x-flurry-route': 'client-a' });
    const now = res.headers.get('x-flurry-instance');
    const state = await json(res, 200);
    if (now === added.id) expect(state.messages).toEqual([]);
    else expect(state.messages.map((m: { text: string }) => m.text)).toEqual(['hi', 'again']);
  });

  it('any gateway - a new gateway process routes by the records in KV: same instances, same sticky choice, same state', async () => {
    const before = await service('room');
    const key = 'user-3';
    const was = await api('GET', '/svc/room/state', undefined, { 'x-flurry-route': key });
    const stateBefore = await json(was, 200);
    await fleet.restartGateway();
    const after = await service('room');
    expect(after.instances.map((i) => i.id).sort()).toEqual(before.instances.map((i) => i.id).sort());
    const now = await api('GET', '/svc/room/state', undefined, { 'x-flurry-route': key });
    expect(now.headers.get('x-flurry-instance')).toBe(was.headers.get('x-flurry-instance'));
    expect((await json(now, 200)).digest).toBe(stateBefore.digest);
  });

  it('delete - destroys the instances; later requests answer 404', async () => {
    expect((await api('DELETE', '/v1/services/room')).status).toBe(200);
    const gone = await api('GET', '/svc/room/state');
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-flurry-error')).toBe('not_found');
    expect((await api('GET', '/v1/services/room')).status).toBe(404);
    const list = await json<{ services: Service[] }>(await api('GET', '/v1/services'), 200);
    expect(list.services.map((s) => s.name)).not.toContain('room');
  });

  it('host loss - an instance whose host died is replaced on another host, and the request is held, not failed', async () => {
    await json(await api('POST', '/v1/services', { name: 'lost', function: 'room', min: 2 }), 201);
    expect((await api('GET', '/svc/lost/state')).status).toBe(200); // held until the first instance is up
    const before = await until('two instances', async () => {
      const list = (await service('lost')).instances;
      return list.length === 2 ? list : undefined;
    }, 30_000);
    expect(new Set(before.map((i) => i.host)).size).toBe(2);
    const victim = before[0];
    const proc = fleet.hosts.find((h) => h.ready.hostId === victim.host || h.name === victim.host)!;
    expect(proc, `no process for ${victim.host}`).toBeDefined();
    await proc.kill();
    // Requests keyed to every instance still answer (the lost one's state starts afresh).
    for (let k = 0; k < 12; k++) {
      const res = await api('GET', '/svc/lost/state', undefined, { 'x-flurry-route': `k${k}` });
      expect(res.status, await res.clone().text()).toBe(200);
      await res.arrayBuffer();
    }
    const after = (await service('lost')).instances;
    expect(after).toHaveLength(2);
    expect(after.map((i) => i.host)).not.toContain(victim.host);
    expect(after.map((i) => i.id)).toContain(before[1].id);
    expect((await api('DELETE', '/v1/services/lost')).status).toBe(200);
  });

  it('errors - an unknown function, a duplicate, bad bounds and bad JSON answer clearly', async () => {
    const unknown = await api('POST', '/v1/services', { name: 'ghost', function: 'no-such-fn' });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.message).toMatch(/function "no-such-fn" is not deployed/);
    expect((await api('POST', '/v1/services', { name: 'r2', function: 'room', min: 0, max: 1 })).status).toBe(201);
    const dup = await api('POST', '/v1/services', { name: 'r2', function: 'room', min: 0, max: 1 });
    expect(dup.status).toBe(409);
    const bounds = await api('PATCH', '/v1/services/r2', { min: 3, max: 2 });
    expect(bounds.status).toBe(400);
    expect((await bounds.json()).error.message).toMatch(/max \(2\) must be at least min \(3\)/);
    const bad = await fetch(`${fleet.url}/v1/services`, { method: 'POST', body: '{nope' });
    expect(bad.status).toBe(400);
    expect((await api('DELETE', '/v1/services/r2')).status).toBe(200);
  });
});
