/** Sets a host active, draining or drained (ControllerSubjects.hostState): the host reports it in its heartbeat. */
import { call, ControllerSubjects, FlurryError, type Fabric, type HostState, type SetHostStateReply, type SetHostStateRequest } from '@flurry/core';

export async function setHostState(fabric: Fabric, hostId: string, state: HostState, reason: string): Promise<void> {
  const req: SetHostStateRequest = { state, reason };
  let reply: SetHostStateReply;
  try {
    reply = await call(fabric.nc, 'hostState', ControllerSubjects.hostState(hostId), req);
  } catch (err) {
    throw new FlurryError('unavailable', `host ${hostId} did not answer (${(err as Error).message})`, { retryAfterSeconds: 1 });
  }
  if (!reply.ok) throw FlurryError.fromWire(reply.error);
}
