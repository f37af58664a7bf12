import { describe, expect, it } from 'vitest';
import { newId, randomHex } from './ids.js';

describe('ids', () => {
  it('randomHex - lower-case hex of the length asked, across refills of its pool', () => {
    const seen = new Set<string>();
    // 2,000 x 16 bytes: the 4 KiB pool is refilled several times.
    for (let i = 0; i < 2000; i++) {
      const hex = randomHex(16);
      expect(hex).toMatch(/^[0-9a-f]{32}$/);
      seen.add(hex);
    }
    expect(seen.size).toBe(2000);
    expect(randomHex(8)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('newId - prefix, time and randomness, safe in a NATS subject', () => {
    const a = newId('req');
    const b = newId('req');
    expect(a).toMatch(/^req_[0-9a-z]+[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });
});
