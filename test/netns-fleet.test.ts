// Hosts at their own addresses (docs/multi-host.md): a 3-node NATS cluster
// (stores replicated 3 times), three worker hosts and a gateway, each in a
// network namespace of its own, so every byte between them crosses veth
// pairs and a bridge. A fork job's parent memory travels to the other hosts
// as multicast pages; a service instance migrates between two namespaced
// hosts under a client loop; a nats-server node is SIGKILLed during a job:
// the job finishes correctly, no acknowledged request is lost, the instance
// keeps its state. Needs root and iproute2; skipped with the reason elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { Subjects, type JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { netnsUnavailable } from '../infra/src/netns/availability.js';
import type { InterfaceBytes } from '../infra/src/netns/network.js';
import { RoomLedger } from '../infra/src/room-ledger.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { brokerNodeOf } from './helpers/broker-node.js';
import { b64, cloneOutputs, finishedJob, runJob, submitJob } from './helpers/jobs.js';
import { expectOneParent, type PatternOutput } from './helpers/pattern.js';
import { roomMessages, talk } from './helpers/room-talk.js';

const unavailable = await netnsUnavailable();
if (unavailable) console.log(`[netns-fleet] skipped: ${unavailable}`);

interface Report { source: string; target: string; downtimeMs: number; totalBytes: number; pageStream?: boolean; verify?: { sourceMemory: string; targetMemory: string } }

const HOSTS = ['host-1', 'host-2', 'host-3'];
// Big enough that the two clone hosts fetch it at the same time (a smaller one may be all fetched by one
// host before the other starts): each then receives chunks the other asked for, by multicast.
const PARENT_MIB = 64;
const CLONES = 24;
const MiB = 1024 * 1024;

describe.skipIf(unavailable !== undefined)('a fleet in network namespaces', () => {
  let fleet: LocalFleet;
  const api = gatewayApi(() => fleet.url);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      natsCluster: 3,
      network: 'netns',
      // No host dies here: a host TTL and leases longer than a stream leader's election after a node's loss
      // (a few seconds), so that the node loss is not taken for a host loss or a gateway's.
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_CALL_TIMEOUT_MS: '10000', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '10', LOG_LEVEL: 'warn' },
      // Info level: the gateway's log names the nats node it is connected to (the node the last test kills).
      gatewayEnv: { FLURRY_HOST_TTL_S: '10', FLURRY_JOB_LEASE_MS: '8000', FLURRY_CONTROLLER_LEASE_MS: '8000', FLURRY_CONSOLIDATE_MS: '0' },
    });
    for (const name of ['pattern', 'room']) expect((await deploy(fleet.url, name, guestProgram(name))).status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  /** The job's record; undefined for a clean refusal (503 with Retry-After: a read in flight when a nats node went away). */
  async function record(id: string): Promise<JobRecord | undefined> {
    const res = await api('GET', `/v1/jobs/${id}`);
    if (res.status === 503 && res.headers.get('retry-after')) return undefined;
    return (await json<{ job: JobRecord }>(res)).job;
  }


  /** Every clone read the whole parent memory and found it as the parent's init wrote it. */
  async function expectCorrect(job: JobRecord): Promise<void> {
    expect(job.state, JSON.stringify(job.error ?? job.errors)).toBe('done');
    expectOneParent(await cloneOutputs<PatternOutput>(api, { id: job.id, clones: CLONES }), CLONES);
  }

  async function counters(names: string[]): Promise<Map<string, InterfaceBytes>> {
    return new Map(await Promise.all(names.map(async (n) => [n, (await fleet.network.bytes(n))!] as const)));
  }

  it('fork - 24 clones over three namespaced hosts: the parent memory reaches the other hosts as multicast pages, across their veths', async () => {
    const before = await counters(HOSTS);
    const job = await runJob(api, { function: 'pattern', clones: CLONES, init: b64({ mib: PARENT_MIB, seed: 1 }), input: b64({ verify: 'all' }) }, { throughOutages: true });
    await expectCorrect(job);
    const after = await counters(HOSTS);
    const others = HOSTS.filter((h) => h !== job.parentHost);
    expect(others).toHaveLength(2);
    for (const host of others) {
      const clones = job.clonesDetail.filter((c) => c.host === host);
      const multicast = clones.reduce((s, c) => s + (c.pages?.multicast ?? 0), 0);
      const received = after.get(host)!.rxBytes - before.get(host)!.rxBytes;
      console.log(`[netns-fleet] ${host}: ${clones.length} clones, pages ${JSON.stringify(clones.map((c) => c.pages))}, ${(received / MiB).toFixed(1)} MiB received on its veth`);
      expect(clones.length, `clones on ${host}`).toBeGreaterThan(0);
      expect(multicast, `multicast pages on ${host}`).toBeGreaterThan(0);
      // Every clone reads the whole parent: the host's page cache got all of it over its own interface.
      expect(received).toBeGreaterThan(PARENT_MIB * MiB);
    }
    // The parent's host sent it (to the nats node it is connected to) over its own interface.
    const sent = after.get(job.parentHost!)!.txBytes - before.get(job.parentHost!)!.txBytes;
    expect(sent).toBeGreaterThan(PARENT_MIB * MiB);
  }, 60_000);

  interface Service { instances: { id: string; host: string }[] }
  const instances = async (name: string) => (await json<{ service: Service }>(await api('GET', `/v1/services/${name}`))).service.instances;

  const ledger = new RoomLedger();

  it('call channels - function calls reach the namespaced hosts at their own addresses, not through the broker', async () => {
    expect((await deploy(fleet.url, 'echo', guestProgram('echo'))).status).toBe(201);
    const callEcho = async () => {
      const res = await fetch(`${fleet.url}/fn/echo/`, { method: 'POST', body: 'hi', signal: AbortSignal.timeout(30_000) });
      expect(res.status).toBe(200);
      return res.text();
    };
    // Warm first: a call of a version nobody holds must find no responders (the counting subscription below answers none).
    expect(await callEcho()).toContain('hi');
    const admin = await connect(fleet.adminConnectOptions());
    try {
      let viaBroker = 0;
      admin.subscribe(Subjects.invoke('*', '*', '*'), { callback: () => void viaBroker++ });
      await admin.flush();
      // Once the gateway's channel to the host is open, a round of calls leaves the broker untouched.
      await until('calls of echo to skip the broker', async () => {
        const before = viaBroker;
        for (const body of await Promise.all(Array.from({ length: 4 }, callEcho))) expect(body).toContain('hi');
        await admin.flush();
        return viaBroker === before ? true : undefined;
      }, 30_000);
    } finally {
      await admin.close();
    }
  });

  it('migrate - a service instance moves between two namespaced hosts under a client loop: every answer in order, the state whole', async () => {
    await json(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/room/join', { name: 'ada' }), 200);
    const [inst] = await instances('room');
    let running = true;
    let seq = 0;
    const hosts: string[] = [];
    const loop = (async () => {
      for (let k = 0; running; k++) {
        const text = `m-${k}`;
        const res = await api('POST', '/svc/room/say', { name: 'ada', text });
        hosts.push(res.headers.get('x-flurry-host') ?? '');
        expect(await json(res, 200)).toEqual({ seq: ++seq });
        ledger.acknowledge(text, seq);
      }
    })();
    loop.catch(() => (running = false));
    await until('20 answers before the migration', async () => (seq >= 20 || !running ? true : undefined));
    const report = (await json<{ migration: Report }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { verify: true }))).migration;
    const at = seq;
    await until('20 answers after the migration', async () => (seq >= at + 20 || !running ? true : undefined));
    running = false;
    await loop;
    console.log(`[netns-fleet] migrated ${report.source} -> ${report.target}: downtime ${report.downtimeMs.toFixed(1)} ms, ${(report.totalBytes / 1024).toFixed(0)} KiB`);
    expect(report.source).toBe(inst!.host);
    expect(report.target).not.toBe(inst!.host);
    expect(report.verify!.targetMemory).toBe(report.verify!.sourceMemory);
    // The pages crossed the namespaces on the page stream, the target connecting to the source's own address.
    expect(report.pageStream).toBe(true);
    expect(hosts[0]).toBe(inst!.host);
    expect(hosts.at(-1)).toBe(report.target);
    expect(await instances('room')).toEqual([expect.objectContaining({ id: inst!.id, host: report.target })]);
    expect(await json(await api('GET', '/svc/room/state'))).toMatchObject({ members: ['ada'], seq });
    expect(ledger.check(await roomMessages(api, 'room'))).toMatchObject({ lost: [], phantom: [], contiguous: true });
  }, 60_000);

  it('node loss - a nats-server node SIGKILLed during a job: the job finishes correctly, no acknowledged request lost, the instance keeps its state', async () => {
    const [inst] = await instances('room');
    const client = talk(() => fleet.url, 'room', 'n', ledger);
    const job = await submitJob(api, { function: 'pattern', clones: CLONES, init: b64({ mib: PARENT_MIB, seed: 2 }), input: b64({ verify: 'all' }) });
    await until('the job running', async () => {
      const j = await record(job.id);
      if (j && ['done', 'failed', 'cancelled'].includes(j.state)) throw new Error(`job ${j.id} was ${j.state} before a node could be killed during it`);
      return j?.state === 'running' ? true : undefined;
    }, 30_000, async () => JSON.stringify(await record(job.id)));
    const acknowledgedBefore = client.acknowledged();
    // The gateway's node: the gateway, the hosts on it and the streams it leads lose it at once; the gateway
    // sends the service request it had in flight again once reconnected, and the host answers its id once
    // (docs/multi-host.md, "What differs from loopback"; test/service-failover.test.ts kills a host's node too).
    const victim = brokerNodeOf(fleet.gateway.lines);
    expect(victim, 'the gateway logs the node it is connected to').toBeDefined();
    await fleet.stopNatsNode(fleet.natsNodeNames().indexOf(victim!), { hard: true });
    const done = await finishedJob(api, job.id, { throughOutages: true });
    await until('20 more answers after the node loss', async () => (client.acknowledged() >= acknowledgedBefore + 20 ? true : undefined), 30_000);
    const statuses = await client.stop();
    console.log(`[netns-fleet] node ${victim} (the gateway's) killed: job ${done.state}, room answers ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(brokerNodeOf(fleet.gateway.lines)).not.toBe(victim);
    await expectCorrect(done);
    expect(await instances('room')).toEqual([expect.objectContaining({ id: inst!.id })]);
    const check = ledger.check(await roomMessages(api, 'room'));
    expect(check).toMatchObject({ lost: [], phantom: [], contiguous: true });
    // Every request answered: none refused with its outcome unknown.
    expect([...statuses.keys()]).toEqual([200]);
    expect((await json(await api('GET', '/svc/room/state'))).members).toEqual(['ada']);
    // The client's requests, too, went over the bridge (the entry's forwarder sits in a namespace of its own).
    expect((await fleet.network.bytes('client'))!.txBytes).toBeGreaterThan(0);
  }, 90_000);
});
