// A fleet on a 3-node nats cluster (docs/reliability.md, "Losing a broker
// node"): every store Flurry makes is replicated 3 times; a node is SIGKILLed
// while a fork job runs and a client talks to a service instance that was just
// migrated. The job finishes exactly, no acknowledged request is lost, the
// instance keeps its state; the node started again rejoins and its copies of
// the streams catch up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { startClusterFleet, type ClusterFleet } from './helpers/cluster-fleet.js';
import { gatewayApi, json, patientApi, until } from './helpers/gateway-api.js';
import { b64, finishedJob, jobUntil, submitJob } from './helpers/jobs.js';
import { holders, roomMessages, talk } from './helpers/room-talk.js';
import { brokerNodeOf, listStreams } from './helpers/broker-node.js';


let cluster: ClusterFleet;
let fleet: LocalFleet;
let nc: NatsConnection;
let jsm: JetStreamManager;
const api = gatewayApi(() => fleet.url);
/** For the checks after the node is lost (helpers/gateway-api.ts). */
const patient = patientApi(api);

beforeAll(async () => {
  cluster = await startClusterFleet(['pattern', 'room'], 3);
  ({ fleet, nc, jsm } = cluster);
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

const streams = () => listStreams(jsm);

/**
 * Moves the leadership of `stream` to `node` by asking its leader to step
 * down until the election lands there (a few tries at most); whether it did.
 */
async function leadOn(stream: string, node: string): Promise<boolean> {
  for (let tries = 0; tries < 12; tries++) {
    const leader = (await jsm.streams.info(stream)).cluster?.leader;
    if (leader === node) return true;
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 5000 }).catch(() => undefined);
    await until(`a new leader of ${stream}`, async () => ((await jsm.streams.info(stream).catch(() => undefined))?.cluster?.leader ? true : undefined), 10_000);
  }
  return false;
}


describe('nats cluster', () => {
  it('every bucket, stream and object store the fleet made (a tenant upload store too) has 3 replicas', async () => {
    expect((await fetch(`${fleet.url}/v1/data/cluster.bin`, { method: 'PUT', body: new Uint8Array(4096) })).status).toBe(201);
    const all = await streams();
    const names = all.map((s) => s.config.name);
    for (const expected of ['KV_flurry_hosts', 'KV_flurry_functions', 'OBJ_flurry_modules', 'KV_flurry_jobs', 'FLURRY_RESULTS', 'FLURRY_JOB_EVENTS', 'KV_flurry_services']) expect(names).toContain(expected);
    expect(names.some((n) => /^OBJ_.*data/.test(n) && n !== 'OBJ_flurry_job_data'), `a tenant's data store among ${names.join(', ')}`).toBe(true);
    expect(all.filter((s) => s.config.num_replicas !== 3).map((s) => `${s.config.name}: ${s.config.num_replicas}`)).toEqual([]);
  });

  it('a node SIGKILLed during a fork job and service traffic right after a migration: the job is exact, no acknowledged request lost, the instance keeps its state; the node rejoins', async () => {
    await json(await api('POST', '/v1/services', { name: 'chat', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/chat/join', { name: 'ada' }), 200);
    const [inst] = (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/chat'))).service.instances;
    // The node to lose: the gateway's, made the leader of the stores a job and heartbeats go through.
    const victim = brokerNodeOf(fleet.gateway.lines);
    expect(victim, 'the gateway logs the node it is connected to').toBeDefined();
    for (const stream of ['KV_flurry_jobs', 'KV_flurry_hosts', 'FLURRY_RESULTS', 'KV_flurry_job_lease', 'FLURRY_JOB_EVENTS']) console.log(`[nats-cluster] ${stream} led by ${victim}: ${await leadOn(stream, victim!)}`);
    const client = talk(() => fleet.url, 'chat', 'cluster');
    await until('some answered requests', async () => (client.acknowledged() >= 10 ? true : undefined), 30_000);

    const submitted = await submitJob(api, { function: 'pattern', clones: 24, init: b64({ mib: 64 }), input: b64({ verify: 'all' }) });
    // The instance moves to another host under the client's loop while the job's parent is made.
    const target = ['host-1', 'host-2', 'host-3'].find((h) => h !== inst!.host)!;
    const moved = (await json<{ migration: { target: string } }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { target }), 200)).migration;
    expect(moved.target).toBe(target);
    await jobUntil(api, submitted.id, 'to finish some of its clones', (j) => j.counts.done > 0 && j.counts.done < 24);

    // The gateway, the hosts on that node and the streams it leads all lose it at once.
    const index = fleet.natsNodeNames().indexOf(victim!);
    const led = (await streams()).filter((s) => s.cluster?.leader === victim).map((s) => s.config.name);
    const ackedAtKill = client.acknowledged();
    await fleet.stopNatsNode(index, { hard: true });
    console.log(`[nats-cluster] killed ${victim}, the gateway's node and leader of ${led.join(', ') || 'no stream'}, after ${ackedAtKill} answered requests`);

    // A job that does not end shows what its coordinator last said of it, of the lease and of the broker.
    const told = () => fleet.gateway.lines.filter((l) => l.includes(submitted.id) || /lease|broker|reduce|watch/.test(l)).slice(-40).join('\n');
    const done = await finishedJob(api, submitted.id, { timeoutMs: 60_000, throughOutages: true, explain: told });
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    expect(done.counts).toEqual({ done: 24, failed: 0, running: 0, pending: 0 });
    const reduced = await json(await patient('GET', `/v1/jobs/${done.id}/result`));
    expect(reduced).toMatchObject({ count: 24, ok: true, failed: [], distinctChecksums: 1, distinctEntropy: 24 });

    await until('requests answered after the kill', async () => (client.acknowledged() >= ackedAtKill + 20 ? true : undefined), 30_000);
    const statuses = await client.stop();
    console.log(`[nats-cluster] service traffic: ${JSON.stringify([...statuses])}`);
    expect(client.ledger.check(await roomMessages(patient, 'chat'))).toMatchObject({ lost: [], phantom: [], contiguous: true });
    // The same instance, where it was migrated to: not replaced (which would have lost its state).
    expect((await json<{ service: { instances: { id: string; host: string }[] } }>(await patient('GET', '/v1/services/chat'))).service.instances).toEqual([expect.objectContaining({ id: inst!.id, host: target })]);
    expect(await holders(patient, inst!.id)).toEqual([target]);
    expect(brokerNodeOf(fleet.gateway.lines)).not.toBe(victim);
    await fleet.waitForHosts(3);

    await fleet.startNatsNode(index);
    const behind = await until('every stream to have its 3 replicas current again', async () => {
      const lagging = (await streams()).filter((s) => {
        const peers = [s.cluster?.leader, ...(s.cluster?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name)];
        return !peers.includes(victim) || peers.length !== 3;
      });
      return lagging.length === 0 ? [] : undefined;
    }, 30_000, async () => JSON.stringify((await streams()).map((s) => ({ stream: s.config.name, leader: s.cluster?.leader, replicas: s.cluster?.replicas }))));
    expect(behind).toEqual([]);
  }, 150_000);
});
