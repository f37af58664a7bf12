/**
 * When the gateway sends a service request again (docs/services.md,
 * "Requests across a broker node's loss"). An attempt whose outcome is
 * unknown because a broker connection dropped — this gateway's, or the
 * instance's host's — is sent again with the same requestId, to wherever
 * the instance is now, until the request's deadline: the host runs each id
 * once (worker-host/src/reply-table.ts), so a request that ran answers with
 * its first reply and one that was lost on its way runs now.
 *
 *   if (shouldResend({ end: 'gateway-outage', outageDuring: true, resending: false, msLeft: 9000 })) ...
 *
 * A loss is not always seen: a message dropped with a node between two
 * others (on a route) drops no connection of this gateway's or the host's.
 * So an attempt also ends, unanswered, after a wait that doubles from
 * `FIRST_RESEND_MS` (resendWaitMs), and the request goes out again: a host
 * still running it answers every copy once it is done.
 *
 * A host that stopped heartbeating or restarted is not asked again: a
 * restarted host lost the instance's state with the request, a silent one
 * may still answer when it resumes (today's 503, outcome unknown).
 */
import type { HostAway } from '../host-held-work.js';

/** How an attempt to get a request answered ended, short of an answer. */
export type AttemptEnd =
  /** This gateway's broker connection dropped while it waited: the request or its reply may be lost. */
  | 'gateway-outage'
  /** The instance's host reported a new broker outage (its heartbeat's brokerOutages) while it held the request. */
  | 'host-outage'
  /** No answer within the attempt's wait (resendWaitMs), the request's deadline still ahead. */
  | 'unanswered'
  /** A timeout at the request's deadline, or another request error from the client library. */
  | 'broker-error'
  /** Nobody serves the instance's subject (nobody got the request). */
  | 'no-responders'
  /** The host stopped heartbeating or restarted. */
  | 'host-gone';

export interface ResendContext {
  end: AttemptEnd;
  /** This gateway's link dropped since the attempt was sent (a broker error then coincides with the outage). */
  outageDuring: boolean;
  /** The request was sent before: a resend is under way (its host may still be subscribing again). */
  resending: boolean;
  /** Time left until the request's own deadline (the invoke timeout). */
  msLeft: number;
}

/** Whether the same request goes out again (same requestId). */
export function shouldResend(c: ResendContext): boolean {
  if (c.msLeft <= 0) return false;
  switch (c.end) {
    case 'gateway-outage':
    case 'host-outage':
    case 'unanswered':
      return true;
    case 'broker-error':
      return c.outageDuring;
    case 'no-responders':
      // On a first attempt the instance's fate is asked first (service-router.ts); during a resend its host is reconnecting.
      return c.resending;
    case 'host-gone':
      return false;
  }
}

/** The first attempt's wait for an answer before the request goes out again. */
export const FIRST_RESEND_MS = 1000;
/** The longest wait between two copies. */
export const MAX_RESEND_MS = 4000;

/** How long attempt `n` (1, 2, ...) waits for an answer before the request is sent again: 1 s, 2 s, 4 s, 4 s, ... */
export function resendWaitMs(attempt: number): number {
  return Math.min(MAX_RESEND_MS, FIRST_RESEND_MS * 2 ** Math.min(attempt - 1, 16));
}

/** How an attempt ended when the instance's host went away while it held the request: a lost broker connection is resent. */
export function hostAwayEnd(err: HostAway): AttemptEnd {
  return err.reason === 'lost its broker connection' ? 'host-outage' : 'host-gone';
}
