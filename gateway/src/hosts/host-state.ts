/** Sets a host active, draining or drained (ControllerSubjects.hostState): the host reports it in its heartbeat. */
import { ControllerSubjects, decodeOrRefuse, encode, FlurryError, type Fabric, type HostState, type SetHostStateReply, type SetHostStateRequest } from '@flurry/core';

export async function setHostState(fabric: Fabric, hostId: string, state: HostState, reason: string): Promise<void> {
  const req: SetHostStateRequest = { state, reason };
  let reply: SetHostStateReply;
  try {
    reply = decodeOrRefuse('SetHostStateReply', (await fabric.nc.request(ControllerSubjects.hostState(hostId), encode(req), { timeout: 5000 })).data);
  } catch (err) {
    throw new FlurryError('unavailable', `host ${hostId} did not answer (${(err as Error).message})`, { retryAfterSeconds: 1 });
  }
  if (!reply.ok) throw FlurryError.fromWire(reply.error);
}
