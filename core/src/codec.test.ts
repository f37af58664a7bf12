import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';

describe('codec', () => {
  it('round trip - keeps bytes binary', () => {
    const msg = { a: 1, body: new Uint8Array([1, 2, 3]), headers: [['x', 'y']] };
    const back = decode<typeof msg>(encode(msg));
    expect(back.a).toBe(1);
    expect([...back.body]).toEqual([1, 2, 3]);
    expect(back.headers).toEqual([['x', 'y']]);
  });

  it('decode - refuses oversized and empty payloads', () => {
    expect(() => decode(encode({ x: 'a'.repeat(100) }), 10)).toThrow(/exceeds the decode limit/);
    expect(() => decode(new Uint8Array(0))).toThrow(/empty/);
  });
});
