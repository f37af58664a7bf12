// Service requests across the loss of a nats node, exactly once
// (docs/services.md, "Requests across a broker node's loss"): a fleet on a
// 3-node nats cluster (stores replicated 3 times), a `room` instance migrated
// under a client loop that talks without pause, then (a) the node only the
// instance's host is connected to and (b) the gateway's node are SIGKILLed.
// Every request is answered 200, the room holds every text once at the seq
// its answer gave (the ledger), and the instance keeps its state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { LocalFleet } from '../infra/src/local-fleet.js';
import { startClusterFleet, type ClusterFleet } from './helpers/cluster-fleet.js';
import type { RunningService } from '../infra/src/services.js';
import { gatewayApi, json, patientApi, until } from './helpers/gateway-api.js';
import { brokerNodeOf, listStreams } from './helpers/broker-node.js';
import { holders, roomMessages, talk } from './helpers/room-talk.js';

let cluster: ClusterFleet;
let fleet: LocalFleet;
let jsm: JetStreamManager;
const api = gatewayApi(() => fleet.url);
/** For the checks after the kills, not the client under test (helpers/gateway-api.ts). */
const patient = patientApi(api);

// As test/netns-fleet.test.ts: a host TTL longer than a stream leader's election after a node's loss, so that
// the node loss is not taken for a host's.
beforeAll(async () => {
  cluster = await startClusterFleet(['room'], 10);
  ({ fleet, jsm } = cluster);
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

const host = (id: string): RunningService => fleet.hosts.find((h) => h.ready.hostId === id)!;
/** The nats node a fleet process is connected to now (its log names it: core/src/broker-link.ts). */
const nodeOf = (p: RunningService) => brokerNodeOf(p.lines);

const streams = () => listStreams(jsm);

/** Kills node `name` (SIGKILL); resolves once `client` got `more` answers after the kill. */
async function killNode(name: string, client: ReturnType<typeof talk>, more: number): Promise<void> {
  const acknowledged = client.acknowledged();
  await fleet.stopNatsNode(fleet.natsNodeNames().indexOf(name), { hard: true });
  await until(`${more} answers after node ${name} was killed`, async () => (client.acknowledged() >= acknowledged + more ? true : undefined), 30_000);
}

describe('service requests across a nats node\'s loss', () => {
  it('the instance\'s host\'s node, then the gateway\'s node SIGKILLed under a client loop: every request 200, each applied once, the state kept', async () => {
    await json(await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 }), 201);
    await json(await api('POST', '/svc/room/join', { name: 'ada' }), 200);
    const [inst] = (await json<{ service: { instances: { id: string; host: string }[] } }>(await api('GET', '/v1/services/room'))).service.instances;
    const gatewayNode = nodeOf(fleet.gateway)!;
    expect(gatewayNode, 'the gateway logs the node it is connected to').toBeDefined();

    // The instance goes to a host on another node than the gateway's, so that losing that node is the host's loss
    // alone. Nodes are drawn at random by each client: a host restarted draws again.
    const offGatewayNode = () => fleet.hosts.map((h) => h.ready.hostId as string).find((id) => id !== inst!.host && nodeOf(host(id)) !== gatewayNode);
    for (let tries = 0; !offGatewayNode() && tries < 10; tries++) {
      await fleet.restartHost(fleet.hosts.map((h) => h.ready.hostId as string).find((id) => id !== inst!.host)!);
      await fleet.waitForHosts(3);
    }
    const target = offGatewayNode();
    expect(target, 'a host on another node than the gateway\'s').toBeDefined();

    const client = talk(() => fleet.url, 'room', 'say');
    await until('20 answers before the migration', async () => (client.acknowledged() >= 20 ? true : undefined), 30_000);
    const moved = (await json<{ migration: { target: string } }>(await api('POST', `/v1/instances/${inst!.id}/migrate`, { target }))).migration;
    expect(moved.target).toBe(target);
    await until('20 answers after the migration', async () => (client.acknowledged() >= 40 ? true : undefined), 30_000);

    // (a) The node the instance's host is connected to, which the gateway is not.
    const hostNode = nodeOf(host(target!))!;
    expect(hostNode).not.toBe(gatewayNode);
    await killNode(hostNode, client, 20);
    expect(nodeOf(host(target!))).not.toBe(hostNode);
    expect(nodeOf(fleet.gateway)).toBe(gatewayNode);

    // Back to three nodes before the next loss: replicated streams need two of three.
    await fleet.startNatsNode(fleet.natsNodeNames().indexOf(hostNode));
    await until('every stream to have its 3 replicas current again', async () => {
      const lagging = (await streams().catch(() => undefined))?.filter((s) => [s.cluster?.leader, ...(s.cluster?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name)].filter(Boolean).length !== 3);
      return lagging?.length === 0 ? true : undefined;
    }, 30_000);

    // (b) The gateway's node (the instance's host may be on it now too).
    await killNode(gatewayNode, client, 20);
    expect(nodeOf(fleet.gateway)).not.toBe(gatewayNode);

    const statuses = await client.stop();
    const resent = fleet.gateway.lines.filter((l) => l.includes('sending it again'));
    console.log(`[service-failover] killed ${hostNode} (host ${target}'s) and ${gatewayNode} (the gateway's): answers ${JSON.stringify(Object.fromEntries(statuses))}, ${resent.length} requests sent again (${resent.map((l) => /"why":"([^"]+)"/.exec(l)?.[1]).join(', ')})`);
    expect([...statuses.keys()], `refused: ${client.refusals.join('; ')}`).toEqual([200]);
    expect(client.ledger.check(await roomMessages(patient, 'room'))).toEqual({
      lost: [], phantom: [], contiguous: true, acknowledged: client.acknowledged(), unknownApplied: 0, unknownDropped: 0,
    });
    // The same instance where it was migrated to, its state whole: not replaced.
    expect((await json<{ service: { instances: { id: string; host: string }[] } }>(await patient('GET', '/v1/services/room'))).service.instances).toEqual([expect.objectContaining({ id: inst!.id, host: target })]);
    // The hosts' heartbeats, as the gateway's view has them: its hosts watch may still be catching up after the node's
    // loss (a stale record of the source's), so the view is read until it agrees, within a few heartbeats.
    await until('the hosts\' heartbeats to list the instance on its target alone', async () => {
      const now = await holders(patient, inst!.id);
      return now.length === 1 && now[0] === target ? now : undefined;
    }, 15_000, async () => `held by ${JSON.stringify(await holders(patient, inst!.id))}`);
    expect(await json(await patient('GET', '/svc/room/state'))).toMatchObject({ members: ['ada'], seq: client.acknowledged() });
  }, 120_000);
});
