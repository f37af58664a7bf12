// Host drain (docs/autoscaling.md): a real nats-server, the gateway and three
// host processes. A host is drained by hand and another one gets SIGTERM while
// clients send requests without pause: every instance moves (same ids, state
// intact), every request gets its correct answer, and nothing new (function
// calls, jobs, instances) is placed on the drained host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { b64, runJob } from './helpers/jobs.js';
import { startRoomFleet } from './helpers/room-fleet.js';

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await startRoomFleet({ onLine: process.env.DRAIN_LOG ? (s, l) => console.log(s, l) : undefined });
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
});

interface Instance { id: string; host: string }
interface Host { id: string; state: string; releasable: boolean; draining: boolean; instances: unknown[] }
interface Move { kind: string; from: string; to: string; instanceId: string; reason: string; ok: boolean }

const instances = async () => (await json<{ service: { instances: Instance[] } }>(await api('GET', '/v1/services/rooms'))).service.instances;
const hosts = async () => (await json<{ hosts: Host[] }>(await api('GET', '/v1/hosts'))).hosts;


/**
 * Clients that each own some room members (routing keys, so sticky to one
 * instance) and say something in a loop without pause. Every answer must be
 * 200; the seqs each instance hands out must be 1, 2, 3... with no gap or
 * repeat at the end (its state went on from where it was).
 */
class Talkers {
  private running = true;
  private loops: Promise<void>[] = [];
  readonly seqs = new Map<string, number[]>();
  readonly hostsSeen = new Set<string>();
  sent = 0;
  /** The first failed request, which ends its loop. */
  failure?: Error;

  constructor(private readonly keys: string[]) {}

  async join(): Promise<void> {
    for (const k of this.keys) {
      const res = await api('POST', '/svc/rooms/join', { name: k }, { 'x-flurry-route': k });
      expect((await json(res)).member).toBe(k);
    }
  }

  start(loops: number): void {
    this.running = true;
    for (let l = 0; l < loops; l++) {
      const mine = this.keys.filter((_, i) => i % loops === l);
      this.loops.push((async () => {
        for (let n = 0; this.running && !this.failure; n++) {
          const k = mine[n % mine.length]!;
          const res = await api('POST', '/svc/rooms/say', { name: k, text: `${k} ${n}` }, { 'x-flurry-route': k });
          const body = await json<{ seq: number }>(res);
          const inst = res.headers.get('x-flurry-instance')!;
          this.hostsSeen.add(res.headers.get('x-flurry-host')!);
          const list = this.seqs.get(inst) ?? [];
          list.push(body.seq);
          this.seqs.set(inst, list);
          this.sent++;
        }
      })().catch((err: Error) => {
        this.failure ??= err;
      }));
    }
  }

  async waitFor(more: number): Promise<void> {
    const target = this.sent + more;
    await until(`${more} more answers`, async () => {
      if (this.failure) throw this.failure;
      return this.sent >= target ? true : undefined;
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    if (this.failure) throw this.failure;
  }

  /** Each instance's seqs, sorted, are exactly 1..n past the ones before the loop (`from`). */
  checkSeqs(from: Map<string, number>): void {
    for (const [inst, list] of this.seqs) {
      const sorted = [...list].sort((a, b) => a - b);
      const first = (from.get(inst) ?? 0) + 1;
      expect(sorted, `seqs of ${inst}`).toEqual(Array.from({ length: sorted.length }, (_, i) => first + i));
    }
  }

  /** Each instance's message count now, read through a key routed to it. */
  async counts(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const k of this.keys) {
      const res = await api('GET', '/svc/rooms/state', undefined, { 'x-flurry-route': k });
      out.set(res.headers.get('x-flurry-instance')!, (await json<{ seq: number }>(res)).seq);
    }
    return out;
  }
}

describe('host drain', () => {
  const keys = Array.from({ length: 9 }, (_, i) => `member-${i}`);
  const talkers = new Talkers(keys);
  let before: Instance[] = [];

  it('drain - POST /v1/hosts/:id/drain moves every instance away while clients talk; no request lost, state intact, host drained', async () => {
    await json(await api('POST', '/v1/services', { name: 'rooms', function: 'room', min: 3, max: 3 }), 201);
    before = await until('three instances', async () => {
      const list = await instances();
      return list.length === 3 ? list : undefined;
    });
    expect(new Set(before.map((i) => i.host)).size).toBe(3);
    await talkers.join();
    const start = await talkers.counts();
    talkers.start(3);
    await talkers.waitFor(30);

    const victim = before[0]!.host;
    const drained = await json<{ drain: { hostId: string; moved: Move[]; failed: unknown[] } }>(await api('POST', `/v1/hosts/${victim}/drain`));
    expect(drained.drain.failed).toEqual([]);
    expect(drained.drain.moved.map((m) => m.instanceId).sort()).toEqual(before.filter((i) => i.host === victim).map((i) => i.id).sort());
    await talkers.waitFor(30);
    await talkers.stop();

    // Same instances (moved, not made again), none left on the drained host.
    const after = await instances();
    expect(after.map((i) => i.id).sort()).toEqual(before.map((i) => i.id).sort());
    expect(after.some((i) => i.host === victim)).toBe(false);
    talkers.checkSeqs(start);
    const counts = await talkers.counts();
    for (const [inst, list] of talkers.seqs) expect(counts.get(inst)).toBe((start.get(inst) ?? 0) + list.length);

    const host = await until('the drained host to be releasable', async () => (await hosts()).find((h) => h.id === victim && h.releasable));
    expect(host.state).toBe('drained');
    expect(host.instances).toEqual([]);
    const journal = await json<{ moves: Move[]; hosts: { id: string; state: string; releasable: boolean }[] }>(await api('GET', '/v1/consolidation'));
    const moves = journal.moves.filter((m) => m.from === victim);
    expect(moves.length).toBe(drained.drain.moved.length);
    for (const m of moves) expect(m).toMatchObject({ kind: 'drain', ok: true, reason: expect.stringMatching(/drain \(api\)/) });
    expect(journal.hosts.find((h) => h.id === victim)).toMatchObject({ state: 'drained', releasable: true });

    // Function calls go elsewhere, and no new instance lands there.
    for (let i = 0; i < 10; i++) {
      const res = await api('GET', '/fn/room/state');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-flurry-host')).not.toBe(victim);
      await res.arrayBuffer();
    }
    // Jobs too: neither the parent nor any clone runs there.
    expect((await deploy(fleet.url, 'pattern', guestProgram('pattern'))).ok).toBe(true);
    const job = await runJob(api, { function: 'pattern', clones: 6, init: b64({ mib: 1 }), reduce: false }, { timeoutMs: 90_000 });
    expect(job.state).toBe('done');
    expect(job.parentHost).not.toBe(victim);
    for (const c of job.clonesDetail) expect(c.host).not.toBe(victim);
    await json(await api('PATCH', '/v1/services/rooms', { min: 4, max: 4 }));
    expect((await instances()).some((i) => i.host === victim)).toBe(false);

    await json(await api('POST', `/v1/hosts/${victim}/activate`));
    await until('the host to be active again', async () => (await hosts()).find((h) => h.id === victim && h.state === 'active'));
  }, 180_000);

  it('drain - a host that receives SIGTERM migrates its instances away before it exits; no request lost', async () => {
    const list = await instances();
    const counted = new Map<string, number>();
    for (const i of list) counted.set(i.host, (counted.get(i.host) ?? 0) + 1);
    const victim = [...counted.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const proc = fleet.hosts.find((_, i) => `host-${i + 1}` === victim)!;
    // The fourth instance took over some routing keys: make them members there.
    await talkers.join();
    const start = await talkers.counts();
    talkers.seqs.clear();
    talkers.start(3);
    await talkers.waitFor(30);

    expect(await proc.stop(60_000)).toBe(0);
    await talkers.waitFor(30);
    await talkers.stop();

    const after = await instances();
    expect(after.map((i) => i.id).sort()).toEqual(list.map((i) => i.id).sort());
    expect(after.some((i) => i.host === victim)).toBe(false);
    talkers.checkSeqs(start);
    const counts = await talkers.counts();
    for (const [inst, seqs] of talkers.seqs) expect(counts.get(inst)).toBe((start.get(inst) ?? 0) + seqs.length);
    const journal = await json<{ moves: Move[] }>(await api('GET', '/v1/consolidation'));
    expect(journal.moves.filter((m) => m.from === victim && m.ok && /drain \(SIGTERM\)/.test(m.reason)).length).toBe(counted.get(victim));
  }, 180_000);
});
