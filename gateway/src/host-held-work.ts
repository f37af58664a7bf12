/**
 * Work a host holds (a request it runs, a result it owes), given up as soon
 * as the host goes away rather than at the work's time limit: it stops
 * heartbeating (paused, cut off, dead), restarts (the work died with it) or
 * reports a lost broker connection (on a nats cluster its node was lost, and
 * a message to or from it may have been lost with the node). The work's
 * outcome is then unknown: the caller decides whether to send it again.
 *
 *   const reply = await whileHostLive(fleet, hostId, call(...), 'this request');   // or HostAway
 */
import { FlurryError } from '@flurry/core';
import type { FleetView } from './fleet-view.js';

/** How often the host's records are looked at while the work runs. */
const CHECK_EVERY_MS = 250;

export type HostAwayReason = 'stopped heartbeating' | 'restarted' | 'lost its broker connection';

/** The host went away while it held the work (whileHostLive). */
export class HostAway extends FlurryError {
  constructor(
    readonly hostId: string,
    readonly reason: HostAwayReason,
    what = 'this request',
  ) {
    super('unavailable', `host ${hostId} ${reason} while it held ${what}; its outcome is unknown`, { retryAfterSeconds: 1 });
  }
}

/** `work`, or HostAway as soon as `hostId` goes away while it runs (`what` names the work in the error). */
export function whileHostLive<T>(fleet: Pick<FleetView, 'live' | 'incarnation' | 'brokerOutages'>, hostId: string, work: Promise<T>, what?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const incarnation = fleet.incarnation(hostId);
  const outages = fleet.brokerOutages(hostId);
  const away = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const live = fleet.live().some((h) => h.id === hostId);
      const why: HostAwayReason | undefined = !live ? 'stopped heartbeating' : fleet.incarnation(hostId) !== incarnation ? 'restarted'
        : fleet.brokerOutages(hostId) !== outages ? 'lost its broker connection' : undefined;
      if (why) reject(new HostAway(hostId, why, what));
    }, CHECK_EVERY_MS);
  });
  away.catch(() => undefined);
  return Promise.race([work, away]).finally(() => clearInterval(timer));
}
