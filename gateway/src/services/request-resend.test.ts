import { describe, expect, it } from 'vitest';
import { hostAwayEnd, resendWaitMs, shouldResend, type AttemptEnd } from './request-resend.js';
import { HostAway } from '../host-held-work.js';

const at = (end: AttemptEnd, more: { outageDuring?: boolean; resending?: boolean; msLeft?: number } = {}) =>
  shouldResend({ end, outageDuring: false, resending: false, msLeft: 5000, ...more });

describe('shouldResend', () => {
  it('a broker connection lost while the request was out (this gateway\'s, or the host\'s) - sent again', () => {
    expect(at('gateway-outage', { outageDuring: true })).toBe(true);
    expect(at('host-outage')).toBe(true);
    expect(at('host-outage', { resending: true })).toBe(true);
  });

  it('unanswered within the attempt\'s wait, the deadline ahead - sent again (a copy may be lost where no connection of ours dropped)', () => {
    expect(at('unanswered')).toBe(true);
    expect(at('unanswered', { resending: true })).toBe(true);
    expect(at('unanswered', { msLeft: 0 })).toBe(false);
  });

  it('the wait before the next copy - 1 s, doubling, at most 4 s', () => {
    expect([1, 2, 3, 4, 5, 60].map(resendWaitMs)).toEqual([1000, 2000, 4000, 4000, 4000, 4000]);
  });

  it('a timeout or request error - sent again only when this gateway\'s link dropped meanwhile', () => {
    expect(at('broker-error')).toBe(false);
    expect(at('broker-error', { outageDuring: true })).toBe(true);
  });

  it('no responders - left to the instance verdict on a first attempt; during a resend, the host is still subscribing: again', () => {
    expect(at('no-responders')).toBe(false);
    expect(at('no-responders', { resending: true })).toBe(true);
  });

  it('a host that stopped heartbeating or restarted - never (its state went with it, or it may answer when it resumes)', () => {
    expect(at('host-gone', { outageDuring: true, resending: true })).toBe(false);
  });

  it('past the request\'s deadline - never', () => {
    for (const end of ['gateway-outage', 'host-outage', 'unanswered', 'broker-error', 'no-responders'] as const) {
      expect(at(end, { outageDuring: true, resending: true, msLeft: 0 })).toBe(false);
    }
  });
});

describe('hostAwayEnd', () => {
  it('a lost broker connection is a host outage (resent); stopped heartbeating and restarted are a host gone', () => {
    expect(hostAwayEnd(new HostAway('host-1', 'lost its broker connection'))).toBe('host-outage');
    expect(hostAwayEnd(new HostAway('host-1', 'stopped heartbeating'))).toBe('host-gone');
    expect(hostAwayEnd(new HostAway('host-1', 'restarted'))).toBe('host-gone');
  });
});
