/**
 * The API's side of host drains and the controller's journal: any gateway
 * forwards `POST /v1/hosts/:id/drain` to the services controller (on
 * whichever replica holds its lease) and reads the journal for
 * `GET /v1/consolidation`.
 */
import {
  call, ControllerSubjects, FlurryError, isNoResponders, SubjectTable,
  type ControllerMove, type DrainHostReply, type DrainHostRequest, type Fabric,
} from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { setHostState } from './host-state.js';
import type { Journal } from './journal.js';

/** A drain migrates every instance of the host one after another: the table allows it minutes. */
const DRAIN_TIMEOUT_MS = SubjectTable.controllerDrain.timeoutMs;

export class HostControl {
  constructor(
    private readonly fabric: Fabric,
    private readonly fleet: FleetView,
    private readonly journal: Journal,
  ) {}

  async drain(hostId: string, requestId: string): Promise<Extract<DrainHostReply, { ok: true }>> {
    await this.liveHost(hostId);
    const req: DrainHostRequest = { requestId, hostId, reason: 'api' };
    let reply: DrainHostReply;
    try {
      reply = await call(this.fabric.nc, 'controllerDrain', ControllerSubjects.drain, req);
    } catch (err) {
      if (isNoResponders(err)) throw new FlurryError('unavailable', 'no services controller is running (no gateway holds its lease yet)', { retryAfterSeconds: 1 });
      throw new FlurryError('timeout', `the drain of ${hostId} did not finish within ${DRAIN_TIMEOUT_MS / 1000} s`);
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return reply;
  }

  /** Puts a draining or drained host back to work (the consolidator may drain it again later). */
  async activate(hostId: string, requestId: string): Promise<void> {
    await this.liveHost(hostId);
    await setHostState(this.fabric, hostId, 'active', `activated by hand (request ${requestId})`);
  }

  /** The controller's moves of every tenant's instances, newest last. */
  async moves(): Promise<ControllerMove[]> {
    return this.journal.list();
  }

  private async liveHost(hostId: string): Promise<void> {
    if (!(await this.fleet.list()).some((h) => h.id === hostId)) throw new FlurryError('not_found', `host ${hostId} is not a live host`);
  }
}
