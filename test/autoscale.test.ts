// The services controller's autoscaler and consolidation (docs/autoscaling.md):
// a real nats-server, the gateway and three host processes, a short scale-in
// cool-down and consolidation rounds every half second.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { startRoomFleet } from './helpers/room-fleet.js';

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await startRoomFleet({
    gatewayEnv: { FLURRY_SCALE_IN_COOLDOWN_MS: '1500', FLURRY_CONSOLIDATE_MS: '500' },
    onLine: process.env.AUTOSCALE_LOG ? (s, l) => console.log(s, l) : undefined,
  });
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
});

interface Instance { id: string; host: string }
interface Host { id: string; state: string; stateReason?: string; releasable: boolean; instances: unknown[]; runningGuests: number }
interface Move { kind: string; from: string; to: string; instanceId: string; reason: string; ok: boolean }

const instances = async (name: string) => (await json<{ service: { instances: Instance[] } }>(await api('GET', `/v1/services/${name}`))).service.instances;
const hosts = async () => (await json<{ hosts: Host[] }>(await api('GET', '/v1/hosts'))).hosts;


describe('consolidation', () => {
  it('consolidation - moves the instances off a lightly loaded host, states why, and marks the host drained and releasable', async () => {
    await json(await api('POST', '/v1/services', { name: 'pack', function: 'room', min: 2, max: 2 }), 201);
    // Two instances start on two hosts (placement spreads them); each gets a member and messages.
    const keys = ['ada', 'bob', 'cy', 'dee', 'eve', 'fay'];
    const said = new Map<string, number>();
    await until('two instances', async () => ((await instances('pack')).length === 2 ? true : undefined));
    for (const k of keys) {
      await json(await api('POST', '/svc/pack/join', { name: k }, { 'x-flurry-route': k }));
      for (let i = 0; i < 5; i++) {
        const res = await api('POST', '/svc/pack/say', { name: k, text: `${k} ${i}` }, { 'x-flurry-route': k });
        const inst = res.headers.get('x-flurry-instance')!;
        await json(res);
        said.set(inst, (said.get(inst) ?? 0) + 1);
      }
    }
    const packed = await until('the instances to share one host', async () => {
      const list = await instances('pack');
      return new Set(list.map((i) => i.host)).size === 1 ? list : undefined;
    });
    const journal = await json<{ moves: Move[] }>(await api('GET', '/v1/consolidation'));
    const moves = journal.moves.filter((m) => m.kind === 'consolidate');
    expect(moves.length).toBeGreaterThanOrEqual(1);
    for (const m of moves) expect(m.reason).toMatch(/^consolidate: \S+ holds \d+ instance\(s\) with \d+ request\(s\) in flight; \S+ has room/);
    const emptied = moves.at(-1)!.from;
    expect(packed[0]!.host).not.toBe(emptied);
    const host = await until('the emptied host to be releasable', async () => (await hosts()).find((h) => h.id === emptied && h.releasable));
    expect(host.state).toBe('drained');
    // Every instance kept its messages through the move.
    for (const k of keys) {
      const res = await api('GET', '/svc/pack/state', undefined, { 'x-flurry-route': k });
      const inst = res.headers.get('x-flurry-instance')!;
      expect((await json<{ seq: number }>(res)).seq).toBe(said.get(inst));
    }
    await json(await api('DELETE', '/v1/services/pack'));
  }, 180_000);
});

describe('autoscaler', () => {
  it('autoscaler - scales out under a burst (requests held, none refused) and back in after it, never outside min and max', async () => {
    await json(await api('POST', '/v1/services', { name: 'burst', function: 'room', min: 1, max: 3, targetConcurrency: 2 }), 201);
    await until('the first instance', async () => ((await instances('burst')).length === 1 ? true : undefined));
    const counts: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        counts.push((await instances('burst')).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    let bursting = true;
    let answered = 0;
    const instancesSeen = new Set<string>();
    const clients = Array.from({ length: 16 }, async () => {
      while (bursting) {
        const res = await api('GET', '/svc/burst/messages?since=0');
        expect(res.status, await res.clone().text()).toBe(200);
        instancesSeen.add(res.headers.get('x-flurry-instance')!);
        await res.arrayBuffer();
        answered++;
      }
    });
    try {
      await until('scale-out to max', async () => ((await instances('burst')).length === 3 ? true : undefined));
      // The new instances answer too.
      await until('answers from three instances', async () => (instancesSeen.size >= 3 ? true : undefined));
    } catch (err) {
      throw new Error(`${(err as Error).message}: instances ${JSON.stringify(await instances('burst'))}, answers from ${[...instancesSeen].join(', ')}`);
    } finally {
      bursting = false;
      await Promise.all(clients);
    }
    expect(answered).toBeGreaterThan(0);

    await until('scale-in to min after the cool-down', async () => ((await instances('burst')).length === 1 ? true : undefined));
    watching = false;
    await watcher;
    expect(Math.max(...counts)).toBe(3);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
    expect(counts.every((n) => n <= 3)).toBe(true);

    // Hosts left without instances are drained: one host holds every instance (consolidation may still move
    // the survivor to where the other services' instances are), the others are releasable.
    await until('one host holding instances, the others releasable', async () => {
      const list = await hosts();
      const holding = list.filter((h) => h.instances.length > 0);
      return holding.length === 1 && list.filter((h) => h.instances.length === 0).every((h) => h.releasable) ? list : undefined;
    }, 90_000, async () => `hosts ${JSON.stringify((await hosts()).map((h) => ({ id: h.id, state: h.state, reason: h.stateReason, instances: h.instances.length, running: h.runningGuests, releasable: h.releasable })))}`);
  }, 240_000);

  it('autoscaler - a service with min 0 holds the first request until an instance starts', async () => {
    await json(await api('POST', '/v1/services', { name: 'lazy', function: 'room', min: 0, max: 1 }), 201);
    expect(await instances('lazy')).toEqual([]);
    const res = await api('POST', '/svc/lazy/join', { name: 'ada' });
    expect(await json(res)).toEqual({ member: 'ada', members: ['ada'] });
    expect((await instances('lazy')).length).toBe(1);
  }, 120_000);

  it('standby - a service that can grow keeps its parent warm on the hosts its next instances would go to', async () => {
    // A version no host has warm yet: only the standby holds can warm it where no instance is.
    expect((await deploy(fleet.url, 'room-standby', guestProgram('room'))).status).toBe(201);
    await json(await api('POST', '/v1/services', { name: 'standby', function: 'room-standby', min: 1, max: 3 }), 201);
    const [only] = await until('one instance', async () => {
      const list = await instances('standby');
      return list.length === 1 ? list : undefined;
    }, 90_000, async () => `instances ${JSON.stringify(await instances('standby'))}, hosts ${JSON.stringify((await hosts()).map((h) => ({ id: h.id, state: h.state, instances: h.instances.length })))}, journal ${JSON.stringify((await json<{ moves: Move[] }>(await api('GET', '/v1/consolidation'))).moves.slice(-5))}`);
    // Where the next instances would go depends on the fleet's state (pickHosts); at least one other host.
    const standbyOn = await until('the parent warm on a host without an instance of the service', async () => {
      const list = (await json<{ hosts: (Host & { warm: { name: string }[] })[] }>(await api('GET', '/v1/hosts'))).hosts;
      const warm = list.filter((h) => h.id !== only!.host && h.warm.some((w) => w.name === 'room-standby')).map((h) => h.id);
      return warm.length > 0 ? warm : undefined;
    });
    expect(standbyOn).not.toContain(only!.host);
    // Warm is not serving: the service still has its one instance, and it answers.
    expect(await instances('standby')).toHaveLength(1);
    expect(await json(await api('POST', '/svc/standby/join', { name: 'ada' }))).toEqual({ member: 'ada', members: ['ada'] });
  }, 120_000);
});
