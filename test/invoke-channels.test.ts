// Direct call channels end to end: a real nats-server, the gateway and two
// worker host processes. Calls skip the broker once the gateway's channels to
// the hosts are open; a host that dies mid-call has the call answered by the
// other host; only the gateway can open a channel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { call, CallFailed, decode, Subjects } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { until } from './helpers/gateway-api.js';
import { slowModule } from './helpers/wat.js';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

let fleet: LocalFleet;
let admin: NatsConnection;
/** Invoke requests that passed the broker. */
let viaBroker = 0;

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 2,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '2', FLURRY_CALL_THREADS: 'on' },
    gatewayEnv: { FLURRY_HOST_TTL_S: '2' },
  });
  expect((await deploy(fleet.url, 'echo', guestProgram('echo'))).status).toBe(201);
  expect((await deploy(fleet.url, 'slow', slowModule(1500))).status).toBe(201);
  // Busy for a minute, limited to 800 ms: every call of it times out, sooner than the gateway hedges a call (1 s)
  // while a host looks lost on a loaded machine (a hedge goes through the broker too).
  expect((await deploy(fleet.url, 'stuck', slowModule(60_000))).status).toBe(201);
  const limited = await fetch(`${fleet.url}/v1/functions/stuck`, { method: 'PATCH', body: JSON.stringify({ limits: { timeoutMs: 800 } }), headers: { 'content-type': 'application/json' } });
  expect(limited.status, await limited.clone().text()).toBe(200);
  // Warm before the counting subscription below exists: a call of a version nobody holds must find no responders to be placed.
  for (const name of ['echo', 'slow']) expect((await callFn(name)).status).toBe(200);
  // Placed the same way; its call times out.
  expect((await callFn('stuck')).status).toBe(504);
  admin = await connect(fleet.adminConnectOptions());
  // Not in the queue group: it sees every call sent through the broker, and answers none.
  admin.subscribe(Subjects.invoke('*', '*', '*'), {
    callback: () => {
      viaBroker++;
    },
  });
}, 120_000);

afterAll(async () => {
  await admin?.close();
  await fleet?.stop();
});

async function callFn(name: string): Promise<{ status: number; host: string | null; body: string }> {
  const res = await fetch(`${fleet.url}/fn/${name}/`, { method: 'POST', body: 'hi', signal: AbortSignal.timeout(30_000) });
  return { status: res.status, host: res.headers.get('x-flurry-host'), body: await res.text() };
}

/** Calls `name` until a round of calls all skip the broker (its channels are open), with the hosts that answered. */
async function untilDirect(name: string, calls: number): Promise<Set<string>> {
  return until(`calls of ${name} to skip the broker`, async () => {
    const before = viaBroker;
    const answers = await Promise.all(Array.from({ length: calls }, () => callFn(name)));
    for (const a of answers) expect(a.status).toBe(200);
    await admin.flush();
    return viaBroker === before ? new Set(answers.map((a) => a.host!)) : undefined;
  }, 60_000);
}

/** The ports each host's call threads read their own calls on now (asked as the gateway asks, with a token of the test's own). */
async function threadPorts(): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const h of fleet.hosts) {
    const reply = await call(admin, 'openCalls', Subjects.openCalls(String(h.ready.hostId)), { token: randomBytes(32) });
    if (!reply.ok) throw new Error(reply.error.message);
    out.set(String(h.ready.hostId), reply.threadPorts ?? []);
  }
  return out;
}

/** Local ports of this machine's established TCP sockets (IPv4 and IPv6): the server ends of the gateway's connections among them. */
function establishedLocalPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[3] === '01') ports.add(parseInt(f[1]!.split(':').pop()!, 16));
    }
  }
  return ports;
}

describe('call channels', () => {
  it('calls skip the broker once the channels are open, and are answered as before', async () => {
    await untilDirect('echo', 4);
    const before = viaBroker;
    for (let i = 0; i < 30; i++) {
      const res = await callFn('echo');
      expect(res.status).toBe(200);
      expect(res.body).toContain('hi');
    }
    await admin.flush();
    expect(viaBroker).toBe(before);
  }, 90_000);

  it('only the gateway opens a channel: a host may not ask another host for one, and a malformed ask is refused', async () => {
    const hostUser = fleet.credentials!.host('host-1');
    const asHost = await connect({ servers: fleet.natsUrl, user: hostUser.user, pass: hostUser.password, inboxPrefix: hostUser.inboxPrefix });
    try {
      const err = await call(asHost, 'openCalls', Subjects.openCalls('host-2'), { token: new Uint8Array(32) }, { timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallFailed);
    } finally {
      await asHost.close();
    }
    const refused = await admin.request(Subjects.openCalls('host-2'), new Uint8Array([0x81, 0xa5, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x01]), { timeout: 5000 });
    expect(decode(refused.data)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  }, 60_000);

  it('a call over its limit read by a call thread: answered 504 once by its host, never sent again; the thread replaced and connected again', async () => {
    // Every call thread up (the placing call above timed out on one: its replacement may still be starting).
    const ports = await until('two call threads on each host', async () => {
      const now = await threadPorts();
      return [...now.values()].every((p) => p.length === 2) ? now : undefined;
    }, 30_000);
    // Over the channels once the gateway has seen it warm.
    await until('stuck to be called over a channel', async () => {
      const before = viaBroker;
      const res = await callFn('stuck');
      expect(res.status).toBe(504);
      await admin.flush();
      return viaBroker === before ? true : undefined;
    }, 60_000);
    for (let i = 0; i < 3; i++) {
      const before = viaBroker;
      const res = await callFn('stuck');
      expect(res.status).toBe(504);
      expect(res.body).toContain('call exceeded 800 ms');
      await admin.flush();
      // Answered by the host, not sent again through the queue group.
      expect(viaBroker).toBe(before);
    }
    // Threads were ended and replaced: the gateway has connections to the new threads' ports too.
    const after = await until('every call thread of every host connected', async () => {
      const now = await threadPorts();
      const open = establishedLocalPorts();
      const all = [...now.values()].flat();
      return all.length === 4 && all.every((p) => open.has(p)) ? now : undefined;
    }, 30_000);
    expect([...after.values()].flat().filter((p) => [...ports.values()].flat().includes(p)).length).toBeLessThan(4);
    // Calls still skip the broker.
    await untilDirect('echo', 4);
  }, 180_000);

  it('a host killed mid-call: the call is sent again through the queue group and answered by the other host', async () => {
    // Warm on both hosts: enough calls at once that the gateway spreads the function.
    await until('slow warm on both hosts', async () => {
      const hosts = new Set((await Promise.all(Array.from({ length: 6 }, () => callFn('slow')))).map((a) => a.host));
      return hosts.size === 2 ? true : undefined;
    }, 90_000);
    await untilDirect('slow', 2);
    const before = viaBroker;
    const sentAt = Date.now();
    const pending = callFn('slow');
    // The host running it says so in its heartbeats after the call was sent.
    const victim = await until('the call running on a host', async () => {
      const { hosts } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; runningGuests: number; heartbeatAt: number }[] };
      return hosts.find((h) => h.runningGuests > 0 && h.heartbeatAt > sentAt + 100)?.id;
    }, 10_000);
    const proc = fleet.hosts.find((h) => h.ready.hostId === victim)!;
    proc.process.kill('SIGKILL');
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('done');
    expect(answer.host).not.toBe(victim);
    await admin.flush();
    // It went out over the channel and came back through the broker.
    expect(viaBroker).toBeGreaterThan(before);
  }, 180_000);

});
