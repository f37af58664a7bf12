/** A call read in place: what is written is what is read, once, by its number; what does not fit is left to the port. */
import { describe, expect, it } from 'vitest';
import { CALL_FRAME_BYTES, CallFrameSlot } from './call-frame.js';
import type { ToThread } from './thread-messages.js';

type CallMessage = Extract<ToThread, { type: 'call' }>;

const call = (over: Partial<CallMessage> = {}): CallMessage => ({ type: 'call', id: 41, key: 'tenant/fn@sha256:ab', entry: 'run', args: [3, 32], input: new Uint8Array([1, 2, 3]), notifyStart: true, ...over });

describe('call frame', () => {
  it('round trip - every field, with and without the optional ones, non-ASCII strings and an empty input', () => {
    const slot = new CallFrameSlot();
    const cases: CallMessage[] = [
      call(),
      call({ id: 2 ** 40 + 1, entry: 'handle', args: [], input: new Uint8Array(0), notifyStart: false, maxOutputBytes: 4096, request: { method: 'POST', path: '/ünï/☃', query: 'a=1&b=é', headers: [['content-type', 'application/json'], ['x-emoji', '🙂']] } }),
      call({ entry: 'run_task', args: [1000] }),
      call({ entry: 'reduce', args: [7], input: new Uint8Array(5000).fill(9), request: { method: 'GET', path: '/', query: '', headers: [] } }),
    ];
    cases.forEach((msg, n) => {
      expect(slot.write(msg, n)).toBe(true);
      const read = slot.take(n);
      expect(read).toEqual(msg);
      // Its own bytes, not a view of the shared slot.
      expect(read!.input.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    });
  });

  it('order - the slot holds one call: it is taken only by its own number, once; a second waits for the port until the slot is free', () => {
    const slot = new CallFrameSlot();
    expect(slot.write(call({ id: 1 }), 5)).toBe(true);
    expect(slot.write(call({ id: 2 }), 6)).toBe(false);
    expect(slot.take(4)).toBeUndefined();
    expect(slot.take(5)?.id).toBe(1);
    expect(slot.take(5)).toBeUndefined();
    expect(slot.write(call({ id: 3 }), 7)).toBe(true);
    expect(slot.take(7)?.id).toBe(3);
  });

  it('port - other messages, calls too large, calls with a field the frame does not know, and unknown entry points are not written', () => {
    const slot = new CallFrameSlot();
    expect(slot.write({ type: 'evict', key: 'k', snapshotId: 1 }, 0)).toBe(false);
    expect(slot.write({ type: 'tasks', id: 1, tasks: [1, 2] }, 0)).toBe(false);
    expect(slot.write(call({ input: new Uint8Array(CALL_FRAME_BYTES) }), 0)).toBe(false);
    // Three UTF-8 bytes per character at most: a key that could overflow is not tried.
    expect(slot.write(call({ key: '☃'.repeat(CALL_FRAME_BYTES / 3) }), 0)).toBe(false);
    expect(slot.write({ ...call(), extra: 1 } as CallMessage, 0)).toBe(false);
    expect(slot.write(call({ entry: 'main' as CallMessage['entry'] }), 0)).toBe(false);
    expect(slot.write(call({ args: new Array(256).fill(0) }), 0)).toBe(false);
    // Nothing was written by any of these: the slot is free and holds no message.
    expect(slot.take(0)).toBeUndefined();
    expect(slot.write(call(), 0)).toBe(true);
  });

  it('largest - the largest input the slot takes is read whole; one byte more goes to the port', () => {
    const slot = new CallFrameSlot();
    // A one-letter key (reckoned at 3 bytes), no arguments: 31 bytes of fields and lengths.
    const largest = CALL_FRAME_BYTES - 31 - 3;
    expect(slot.write(call({ key: 'k', args: [], input: new Uint8Array(largest + 1) }), 0)).toBe(false);
    const msg = call({ key: 'k', args: [], input: new Uint8Array(largest).fill(7) });
    expect(slot.write(msg, 0)).toBe(true);
    expect(slot.take(0)).toEqual(msg);
  });
});
