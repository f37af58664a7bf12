/** A three-host fleet with the `room` guest server deployed, for the service and migration tests. */
import { LocalFleet } from '../../infra/src/local-fleet.js';
import { deploy, guestProgram } from './functions.js';

export async function startRoomFleet(): Promise<LocalFleet> {
  const fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { FLURRY_CALL_TIMEOUT_MS: '5000', FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '2' },
    gatewayEnv: { FLURRY_HOST_TTL_S: '2' },
  });
  const res = await deploy(fleet.url, 'room', guestProgram('room'));
  if (res.status !== 201) {
    await fleet.stop();
    throw new Error(`deploying room answered ${res.status}: ${await res.text()}`);
  }
  return fleet;
}
