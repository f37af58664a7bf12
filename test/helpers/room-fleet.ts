/** A three-host fleet with the `room` guest server deployed, for the service, migration, drain and autoscaling tests. */
import { LocalFleet } from '../../infra/src/local-fleet.js';
import { deploy, guestProgram } from './functions.js';

/**
 * Consolidation is off unless `gatewayEnv` turns it on (FLURRY_CONSOLIDATE_MS):
 * suites that place instances by hand must not see them moved. An instance
 * whose host stops heartbeating is replaced at once (FLURRY_INSTANCE_LOST_MS
 * 0): these suites kill hosts; the grace for paused hosts is tested in
 * host-pause.test.ts.
 */
export async function startRoomFleet(opts: { gatewayEnv?: Record<string, string>; hostEnv?: Record<string, string>; onLine?: (service: string, line: string) => void } = {}): Promise<LocalFleet> {
  const fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { FLURRY_CALL_TIMEOUT_MS: '5000', FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '4', ...opts.hostEnv },
    gatewayEnv: { FLURRY_HOST_TTL_S: '4', FLURRY_CONSOLIDATE_MS: '0', FLURRY_INSTANCE_LOST_MS: '0', ...opts.gatewayEnv },
    onLine: opts.onLine,
  });
  const res = await deploy(fleet.url, 'room', guestProgram('room'));
  if (res.status !== 201) {
    await fleet.stop();
    throw new Error(`deploying room answered ${res.status}: ${await res.text()}`);
  }
  return fleet;
}
