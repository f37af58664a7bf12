import { describe, expect, it } from 'vitest';
import { encode } from './codec.js';
import { decodeChecked, decodeOrRefuse } from './checked-decode.js';
import type { CloneResult, ForkReply } from './protocol.js';

const reply: ForkReply = { ok: true, hostId: 'host-2', started: 8, runningAt: 1_765_000_000_000, pager: 'userfaultfd', phases: { receivedAt: 1_765_000_000_000.25, preparedMs: 4.5, runningMs: 31.2 } };
const result: CloneResult = {
  requestId: 'r', hostId: 'host-2', index: 3, ok: true, startMs: 30.1, runMs: 200, createdMs: 12.5, firstFaultMs: 30.4,
  pages: { local: 1, multicast: 0, unicast: 2, zero: 0 }, faultWaitMs: 0.3,
};

describe('fork phases on the wire', () => {
  it('a fork reply and a clone result with phases - come back equal', () => {
    expect(decodeChecked('ForkReply', encode(reply))).toEqual(reply);
    expect(decodeChecked('CloneResult', encode(result))).toEqual(result);
  });

  it('without phases (a host from before) - still valid', () => {
    const { phases: _, ...old } = reply as Extract<ForkReply, { ok: true }>;
    expect(decodeChecked('ForkReply', encode(old))).toEqual(old);
    const { createdMs: _c, firstFaultMs: _f, ...oldResult } = result;
    expect(decodeChecked('CloneResult', encode(oldResult))).toEqual(oldResult);
  });

  it('a negative, infinite or missing phase - refused naming the field', () => {
    const phases = (reply as Extract<ForkReply, { ok: true }>).phases!;
    expect(() => decodeOrRefuse('ForkReply', encode({ ...reply, phases: { ...phases, preparedMs: -1 } }))).toThrow(/phases\.preparedMs/);
    expect(() => decodeOrRefuse('ForkReply', encode({ ...reply, phases: { ...phases, runningMs: Infinity } }))).toThrow(/phases\.runningMs/);
    expect(() => decodeOrRefuse('ForkReply', encode({ ...reply, phases: { receivedAt: 1, preparedMs: 1 } }))).toThrow(/phases\.runningMs/);
    expect(() => decodeOrRefuse('CloneResult', encode({ ...result, createdMs: 'soon' }))).toThrow(/createdMs/);
    expect(() => decodeOrRefuse('CloneResult', encode({ ...result, firstFaultMs: -0.5 }))).toThrow(/firstFaultMs/);
  });
});
