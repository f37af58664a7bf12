/**
 * A fleet on a 3-node nats cluster (stores replicated 3 times) for the suites
 * that kill a node: 3 hosts, the given functions deployed, and an admin
 * connection with JetStream's manager to look at the streams.
 */
import { expect } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { LocalFleet } from '../../infra/src/local-fleet.js';
import { deploy, guestProgram } from './functions.js';

export interface ClusterFleet {
  fleet: LocalFleet;
  nc: NatsConnection;
  jsm: JetStreamManager;
  stop(): Promise<void>;
}

/**
 * `hostTtlS`: the host TTL of hosts and gateway. Leases are 8 s, longer than
 * a stream leader's election after a node's loss, so that a node lost is not
 * taken for a gateway lost.
 */
export async function startClusterFleet(functions: string[], hostTtlS: number): Promise<ClusterFleet> {
  const fleet = await LocalFleet.start({
    hosts: 3,
    natsCluster: 3,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: String(hostTtlS), FLURRY_CALL_TIMEOUT_MS: '10000' },
    gatewayEnv: { FLURRY_HOST_TTL_S: String(hostTtlS), FLURRY_JOB_LEASE_MS: '8000', FLURRY_CONTROLLER_LEASE_MS: '8000', FLURRY_CONSOLIDATE_MS: '0' },
  });
  try {
    for (const name of functions) expect((await deploy(fleet.url, name, guestProgram(name))).status).toBe(201);
    const nc = await connect(fleet.adminConnectOptions());
    return {
      fleet, nc, jsm: await jetstreamManager(nc),
      async stop() {
        await nc.close();
        await fleet.stop();
      },
    };
  } catch (err) {
    await fleet.stop();
    throw err;
  }
}
