// Host drain with function calls in flight on the call threads' own
// connections (docs/autoscaling.md, "Host states"; docs/architecture.md, call
// threads): a real nats-server, the gateway and two host processes. A host
// drained by hand, then another one SIGTERMed, while clients call without
// pause: every call is answered 200, the calls sent after the drain took
// hold go to the other host, and the drained host ends releasable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { slowModule } from './helpers/wat.js';

let fleet: LocalFleet;
let admin: NatsConnection;
/** Invoke requests that passed the broker (not a call thread's own connection). */
let viaBroker = 0;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 2,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_CALL_THREADS: 'on' },
  });
  expect((await deploy(fleet.url, 'echo', guestProgram('echo'))).status).toBe(201);
  // Long enough that a call is in flight on a thread at any moment of the loop.
  expect((await deploy(fleet.url, 'slow', slowModule(120))).status).toBe(201);
  // Warm before the counting subscription below exists: a call of a version nobody holds must find no responders to be placed.
  for (const name of ['echo', 'slow']) expect((await fetch(`${fleet.url}/fn/${name}/`, { method: 'POST', body: 'hi' })).status).toBe(200);
  admin = await connect(fleet.adminConnectOptions());
  // Not in the queue group: it sees every call sent through the broker, and answers none.
  admin.subscribe(Subjects.invoke('*', '*', '*'), { callback: () => void viaBroker++ });
}, 120_000);

afterAll(async () => {
  await admin?.close();
  await fleet?.stop();
});

interface Answer { sentAt: number; answeredAt: number; status: number; host: string | null; body: string }
interface Host { id: string; state: string; releasable: boolean }

/** Callers in a loop without pause, each alternating `slow` and `echo`; every answer is kept. */
class Callers {
  readonly answers: Answer[] = [];
  private running = true;
  private loops: Promise<void>[] = [];

  start(loops: number): void {
    this.running = true;
    for (let l = 0; l < loops; l++) {
      this.loops.push((async () => {
        for (let n = 0; this.running; n++) {
          const name = n % 2 === 0 ? 'slow' : 'echo';
          const sentAt = Date.now();
          const res = await fetch(`${fleet.url}/fn/${name}/`, { method: 'POST', body: 'hi', signal: AbortSignal.timeout(30_000) });
          const body = await res.text();
          this.answers.push({ sentAt, answeredAt: Date.now(), status: res.status, host: res.headers.get('x-flurry-host'), body });
        }
      })());
    }
  }

  async waitFor(more: number): Promise<void> {
    const target = this.answers.length + more;
    await until(`${more} more answers`, async () => (this.answers.length >= target ? true : undefined), 60_000);
  }

  async stop(): Promise<Answer[]> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
    return this.answers.splice(0);
  }
}

const hosts = async () => (await json<{ hosts: Host[] }>(await api('GET', '/v1/hosts'))).hosts;

/** The host that answered most of `answers`. */
function busiest(answers: Answer[]): string {
  const count = new Map<string, number>();
  for (const a of answers) if (a.host) count.set(a.host, (count.get(a.host) ?? 0) + 1);
  return [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
}

/** Until a round of calls of both functions, from several callers at once, all skip the broker. */
async function untilDirect(): Promise<void> {
  await until('calls to skip the broker', async () => {
    const before = viaBroker;
    const round = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const res = await fetch(`${fleet.url}/fn/${i % 2 ? 'echo' : 'slow'}/`, { method: 'POST', body: 'hi', signal: AbortSignal.timeout(30_000) });
      return { status: res.status, body: await res.text() };
    }));
    expect(round.filter((a) => a.status !== 200)).toEqual([]);
    await admin.flush();
    return viaBroker === before ? true : undefined;
  }, 60_000);
}

describe('host drain with calls on the call threads\' connections', () => {
  const callers = new Callers();

  it('drained by hand mid-calls: every call answered, later ones by the other host; the host ends drained and releasable', async () => {
    await untilDirect();
    callers.start(4);
    await callers.waitFor(40);
    const victim = busiest(callers.answers);
    const askedAt = Date.now();
    const drained = await json<{ drain: { hostId: string; failed: unknown[] } }>(await api('POST', `/v1/hosts/${victim}/drain`));
    expect(drained.drain).toMatchObject({ hostId: victim, failed: [] });
    await callers.waitFor(40);
    // A heartbeat period or two for the gateway to hear that the host drains; calls sent before may still reach it.
    await new Promise((r) => setTimeout(r, 1000));
    const settledAt = Date.now();
    await callers.waitFor(20);
    const answers = await callers.stop();

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    console.log(`[drain-calls] ${answers.length} calls; ${answers.filter((a) => a.host === victim && a.sentAt < askedAt && a.answeredAt > askedAt).length} in flight on ${victim} when its drain was asked`);
    expect(answers.filter((a) => a.sentAt >= settledAt).map((a) => a.host)).not.toContain(victim);
    expect(answers.filter((a) => a.sentAt >= settledAt).length).toBeGreaterThan(0);
    const host = await until('the drained host to be releasable', async () => (await hosts()).find((h) => h.id === victim && h.releasable), 30_000);
    expect(host.state).toBe('drained');

    await json(await api('POST', `/v1/hosts/${victim}/activate`));
    await until('the host to be active again', async () => (await hosts()).find((h) => h.id === victim && h.state === 'active'), 30_000);
  }, 180_000);

  it('SIGTERMed mid-calls: the host drains and exits 0, every call answered, by the other host once it is gone', async () => {
    // Both hosts serve again, each through its threads' own connections.
    await until('both hosts to answer calls', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const res = await Promise.all(Array.from({ length: 4 }, () => fetch(`${fleet.url}/fn/slow/`, { method: 'POST', body: 'hi' })));
        for (const r of res) {
          expect(r.status).toBe(200);
          seen.add(r.headers.get('x-flurry-host')!);
          await r.arrayBuffer();
        }
      }
      return seen.size === 2 ? true : undefined;
    }, 60_000);
    await untilDirect();
    callers.start(4);
    await callers.waitFor(40);
    const victim = busiest(callers.answers);
    const proc = fleet.hosts.find((h) => String(h.ready.hostId) === victim)!;
    const stoppingAt = Date.now();
    expect(await proc.stop(60_000)).toBe(0);
    const exitedAt = Date.now();
    console.log(`[drain-calls] ${victim} exited after ${exitedAt - stoppingAt} ms`);
    await callers.waitFor(40);
    const answers = await callers.stop();

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.filter((a) => a.sentAt >= exitedAt).map((a) => a.host)).not.toContain(victim);
    expect(answers.filter((a) => a.sentAt >= exitedAt).length).toBeGreaterThan(0);
  }, 180_000);
});
