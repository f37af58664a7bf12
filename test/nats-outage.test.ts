// NATS outages (docs/reliability.md): the fleet's nats-server is stopped and
// started again on the same port with the same JetStream store while a job
// runs, while a service takes traffic and while a service instance migrates.
// The gateway answers 503 with Retry-After while the broker is away (never a
// hang), hosts reconnect and announce themselves, and nothing acknowledged is
// lost: the job finishes with every index counted once, the service instance
// keeps its state, a migration ends with exactly one owner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { b64, finishedJob, jobUntil, submitJob } from './helpers/jobs.js';
import { holders, roomMessages, talk } from './helpers/room-talk.js';

const TTL_S = 2;
/** 1.5 times a host's TTL: a gateway that judged hosts by their silence would think them all dead. */
const DOWN_MS = 3000;

let fleet: LocalFleet;
const api = gatewayApi(() => fleet.url);

beforeAll(async () => {
  fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: String(TTL_S), FLURRY_CALL_TIMEOUT_MS: '10000' },
    gatewayEnv: { FLURRY_HOST_TTL_S: String(TTL_S), FLURRY_JOB_LEASE_MS: '8000', FLURRY_CONTROLLER_LEASE_MS: '8000', FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn' },
  });
  for (const name of ['pattern', 'room']) expect((await deploy(fleet.url, name, guestProgram(name))).ok).toBe(true);
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
});

/** Waits until the gateway has noticed the broker is gone (its /healthz says so). */
async function gatewaySeesOutage(): Promise<void> {
  await until('the gateway to notice the broker is gone', async () => {
    const h = (await (await fetch(`${fleet.url}/healthz`)).json()) as { broker: string };
    return h.broker === 'reconnecting' ? true : undefined;
  }, 10_000);
}

/** An API call during the outage: answered 503 with Retry-After at once (a hang fails the fetch after 4 s). */
async function expectUnavailable(method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${fleet.url}${path}`, {
    method, signal: AbortSignal.timeout(4000),
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBe(503);
  expect(res.headers.get('retry-after'), `${method} ${path}`).toMatch(/^\d+$/);
  expect(JSON.parse(text).error.code).toBe('unavailable');
}

describe('nats outage', () => {
  it('nats-server restarted during a job - 503 with Retry-After while it is away; the job finishes exactly, each index once, its parent kept', async () => {
    const submitted = await submitJob(api, { function: 'pattern', clones: 24, init: b64({ mib: 96 }), input: b64({ verify: 'all' }) });
    const before = await jobUntil(api, submitted.id, 'to finish some of its clones', (j) => j.counts.done > 0 && j.counts.done < 24);
    const restarting = fleet.restartNats({ downMs: DOWN_MS });
    await gatewaySeesOutage();
    await expectUnavailable('GET', `/v1/jobs/${submitted.id}`);
    await expectUnavailable('POST', '/fn/pattern/', {});
    await expectUnavailable('GET', '/v1/hosts');
    await restarting;
    const done = await finishedJob(api, submitted.id, { timeoutMs: 120_000, throughOutages: true });
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    expect(done.counts).toEqual({ done: 24, failed: 0, running: 0, pending: 0 });
    // Hosts were not taken for dead while the broker was away: the parent was not made again.
    expect(done.snapshotId).toBe(before.snapshotId ?? done.snapshotId);
    expect(done.parentHost).toBe(before.parentHost ?? done.parentHost);
    const reduced = JSON.parse(Buffer.from(await (await api('GET', `/v1/jobs/${done.id}/result`)).arrayBuffer()).toString());
    expect(reduced).toMatchObject({ count: 24, ok: true, failed: [], distinctChecksums: 1, distinctEntropy: 24 });
    // Every host is back and announced itself.
    await fleet.waitForHosts(3);
  }, 180_000);

  it('nats-server restarted during service traffic - the request in flight is answered (sent again), those refused meanwhile never applied; the instance keeps its state', async () => {
    await json(await api('POST', '/v1/services', { name: 'chat', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/chat/join', { name: 'ada' }), 200);
    const [inst] = (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/chat'))).service.instances;
    const client = talk(() => fleet.url, 'chat', 'outage');
    const ledger = client.ledger;
    await until('some answered requests', async () => (client.acknowledged() >= 20 ? true : undefined), 30_000);
    const restarting = fleet.restartNats({ downMs: DOWN_MS });
    await gatewaySeesOutage();
    await restarting;
    const ackedAtRestart = client.acknowledged();
    await until('requests answered after the restart', async () => (client.acknowledged() >= ackedAtRestart + 20 ? true : undefined), 60_000);
    const statuses = await client.stop();
    console.log(`[nats-outage] service traffic: ${JSON.stringify([...statuses])}`);
    // The request in flight when the broker went away is sent again once it is back (docs/services.md, "Requests
    // across a broker node's loss"), the host answering its id once: it is answered 200. One arriving while the
    // broker is away waits 2 s for it, then is refused 503 before anything was sent: never applied.
    const check = ledger.check(await roomMessages(api, 'chat'));
    expect(check).toMatchObject({ lost: [], phantom: [], contiguous: true, unknownApplied: 0 });
    // The same instance, on the same host: not replaced (which would have lost its state).
    expect((await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/chat'))).service.instances).toEqual([expect.objectContaining({ id: inst!.id, host: inst!.host })]);
    expect(await holders(api, inst!.id)).toEqual([inst!.host]);
  }, 120_000);

  it('nats-server restarted during a migration - it commits or aborts; exactly one host owns the instance and its state is whole', async () => {
    await json(await api('POST', '/v1/services', { name: 'mover', function: 'room', min: 1, max: 1, init: b64({ ballastMiB: 96 }) }), 201);
    await json(await api('POST', '/svc/mover/join', { name: 'ada' }), 200);
    const [inst] = (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/mover'))).service.instances;
    const client = talk(() => fleet.url, 'mover', 'mig');
    const ledger = client.ledger;
    await until('some answered requests', async () => (client.acknowledged() >= 10 ? true : undefined), 30_000);
    const target = ['host-1', 'host-2', 'host-3'].find((h) => h !== inst!.host)!;
    const receiver = fleet.hosts.find((h) => h.ready.hostId === target)!;
    const seen = receiver.lines.length;
    let over = false;
    const migrating = api('POST', `/v1/instances/${inst!.id}/migrate`, { target }).catch((err: unknown) => err as Error).finally(() => (over = true));
    await until('the target to start receiving', async () => (receiver.lines.slice(seen).some((l) => l.includes('receiving service instance')) ? true : over ? false : undefined), 30_000).then((receiving) => expect(receiving, 'the migration ended before the target logged receiving').toBe(true));
    await fleet.restartNats({ downMs: 1500 });
    const answer = await migrating;
    const outcome = answer instanceof Error ? answer.message : `${answer.status} ${await answer.text()}`;
    console.log(`[nats-outage] migration across the restart: ${outcome}`);
    // A clean answer either way: done, or refused as unavailable.
    expect(answer instanceof Error ? 0 : answer.status, outcome).toSatisfy((s: number) => s === 200 || s === 503);
    await fleet.waitForHosts(3);
    // Exactly one host owns it, the one the record names, and it answers with the whole state.
    const owner = await until('one owner of the instance', async () => {
      const h = await holders(api, inst!.id);
      return h.length === 1 ? h[0] : undefined;
    }, 30_000);
    const ackedBefore = client.acknowledged();
    await until('requests answered after the restart', async () => (client.acknowledged() >= ackedBefore + 10 ? true : undefined), 60_000);
    await client.stop();
    expect(await holders(api, inst!.id)).toEqual([owner]);
    // The gateway settles the record from the hosts' records once they have all heartbeat after the outage.
    const svc = await until('the placement to name the owner, unmarked', async () => {
      const s = (await json<{ service: { instances: { id: string; host: string; migrating?: unknown }[] } }>(await api('GET', '/v1/services/mover'))).service;
      return s.instances[0]?.migrating === undefined ? s : undefined;
    }, 30_000);
    expect(svc.instances).toEqual([expect.objectContaining({ id: inst!.id, host: owner })]);
    expect(ledger.check(await roomMessages(api, 'mover'))).toMatchObject({ lost: [], phantom: [], contiguous: true });
  }, 180_000);

  it('broker away longer than FLURRY_NATS_MAX_OUTAGE_MS - the gateway and the host give up and exit (for their supervisor to start them again), saying why', async () => {
    const short = await LocalFleet.start({
      hosts: 1,
      env: { FLURRY_NATS_MAX_OUTAGE_MS: '1500' },
      hostEnv: { FLURRY_GUEST_THREADS: '1', LOG_LEVEL: 'warn' },
      gatewayEnv: { LOG_LEVEL: 'warn' },
    });
    try {
      // Twice FLURRY_NATS_MAX_OUTAGE_MS.
      await short.restartNats({ downMs: 3000 });
      const exitOf = (svc: { name: string; exited: Promise<number | null> }) =>
        Promise.race([svc.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${svc.name} did not exit within 20 s of the broker coming back`)), 20_000))]);
      const codes = await Promise.all([exitOf(short.gateway), exitOf(short.hosts[0]!)]);
      expect(codes).toEqual([1, 1]);
      for (const svc of [short.gateway, short.hosts[0]!]) expect(svc.lines.some((l) => l.includes('the broker has been unreachable too long'))).toBe(true);
    } finally {
      await short.stop();
    }
  }, 60_000);
});
