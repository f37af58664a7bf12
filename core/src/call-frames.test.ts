import { describe, expect, it } from 'vitest';
import { callPayload, encodeCallFrame, encodeFrame, FrameReader, FrameType, splitCallPayload } from './call-frames.js';

describe('call frames', () => {
  it('a stream cut anywhere gives back the same frames, in order', () => {
    const frames = [encodeFrame(FrameType.hello, 0, new Uint8Array(32).fill(1)), encodeFrame(FrameType.call, 7, callPayload('00-ab', new Uint8Array([1, 2, 3]))), encodeFrame(FrameType.declined, 4_000_000_000, new Uint8Array(0))];
    const stream = Buffer.concat(frames);
    for (const cut of [1, 3, 4, 9, 20, stream.length - 1]) {
      const reader = new FrameReader(1024);
      const got = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(got.map((f) => [f.type, f.id, f.payload.length])).toEqual([[FrameType.hello, 0, 32], [FrameType.call, 7, 9], [FrameType.declined, 4_000_000_000, 0]]);
      const call = splitCallPayload(got[1]!.payload)!;
      expect([call.traceparent, [...call.request]]).toEqual(['00-ab', [1, 2, 3]]);
    }
    // One byte at a time.
    const reader = new FrameReader(1024);
    const got = [...stream].flatMap((b) => reader.push(Buffer.from([b])));
    expect(got).toHaveLength(3);
  });

  it('a call frame written whole reads back as the same frame as one framed from its payload', () => {
    const request = new Uint8Array(300).map((_, i) => i);
    const traceparent = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01';
    const whole = encodeCallFrame(4_000_000_001, traceparent, request);
    expect(whole).toEqual(encodeFrame(FrameType.call, 4_000_000_001, callPayload(traceparent, request)));
    const [frame] = new FrameReader(1024).push(whole);
    const call = splitCallPayload(frame!.payload)!;
    expect([frame!.type, frame!.id, call.traceparent, [...call.request]]).toEqual([FrameType.call, 4_000_000_001, traceparent, [...request]]);
  });

  it('bad input - a length over the limit or shorter than a head is refused as soon as it is read', () => {
    expect(() => new FrameReader(100).push(Buffer.from([0, 0, 1, 0]))).toThrow(/256 bytes/);
    expect(() => new FrameReader(100).push(Buffer.from([0, 0, 0, 4, 1, 1, 1, 1]))).toThrow(/4 bytes/);
    // A trace that claims more bytes than the payload holds is no call payload.
    expect(splitCallPayload(new Uint8Array([5, 1, 2]))).toBeUndefined();
    expect(splitCallPayload(new Uint8Array(0))).toBeUndefined();
    // A trace too long to frame is left out rather than cut.
    const long = splitCallPayload(callPayload('x'.repeat(300), new Uint8Array([9])))!;
    expect([long.traceparent, [...long.request]]).toEqual(['', [9]]);
  });
});
