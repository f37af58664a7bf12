import { describe, expect, it } from 'vitest';
import { FlurryError, type FunctionRecord } from '@flurry/core';
import { checkLimits, checkModuleMemory, invokeLimitsOf, type LimitCaps } from './function-limits.js';
import { limitsBody } from './function-limits-routes.js';

const caps: LimitCaps = { timeoutMs: 15_000, memoryBytes: 1024 ** 3, outputBytes: 4 * 1024 * 1024 };
const encoded = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function refusal(f: () => unknown): FlurryError {
  try {
    f();
  } catch (err) {
    if (err instanceof FlurryError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('function limits', () => {
  it('limits - within the caps are accepted, each one at its cap too', () => {
    expect(() => checkLimits({ timeoutMs: 500, memoryBytes: 64 * 1024 * 1024, outputBytes: 2048 }, caps)).not.toThrow();
    expect(() => checkLimits({ ...caps }, caps)).not.toThrow();
    expect(() => checkLimits({}, caps)).not.toThrow();
  });

  it('limits - above a cap is refused naming the cap and its variable', () => {
    expect(refusal(() => checkLimits({ timeoutMs: 15_001 }, caps))).toMatchObject({
      code: 'bad_request', message: "limits.timeoutMs 15001 exceeds the fleet's cap of 15000 (FLURRY_INVOKE_TIMEOUT_MS)",
    });
    expect(refusal(() => checkLimits({ outputBytes: 8 * 1024 * 1024 }, caps)).message).toContain('FLURRY_MAX_OUTPUT');
    expect(refusal(() => checkLimits({ memoryBytes: 2 * 1024 ** 3 }, caps)).message).toContain('FLURRY_MAX_GUEST_MEMORY');
  });

  it('limits - below the least a record holds is refused', () => {
    expect(refusal(() => checkLimits({ outputBytes: 10 }, caps)).message).toBe('limits.outputBytes 10 is below the least allowed, 1024');
    expect(refusal(() => checkLimits({ memoryBytes: 4096 }, caps)).message).toBe('limits.memoryBytes 4096 is below the least allowed, 65536');
  });

  it('limits - a module declaring more memory than the limit is refused, one within it passes', () => {
    expect(() => checkModuleMemory('echo', 1024, { memoryBytes: 64 * 1024 * 1024 })).not.toThrow();
    expect(() => checkModuleMemory('echo', 1024, undefined)).not.toThrow();
    expect(refusal(() => checkModuleMemory('echo', 1024, { memoryBytes: 32 * 1024 * 1024 })).message).toMatch(
      /^function "echo": its module declares a memory maximum of 67108864 bytes \(1024 pages\), above its limits.memoryBytes 33554432/,
    );
  });

  it('limits - the hosts are told the timeout and output, not the memory (checked at deploy)', () => {
    const fn = { limits: { timeoutMs: 500, memoryBytes: 65536, outputBytes: 2048 } } as FunctionRecord;
    expect(invokeLimitsOf(fn)).toEqual({ timeoutMs: 500, outputBytes: 2048 });
    expect(invokeLimitsOf({ limits: { memoryBytes: 65536 } } as FunctionRecord)).toBeUndefined();
    expect(invokeLimitsOf({} as FunctionRecord)).toBeUndefined();
  });

  it('limits body - takes exactly { limits: {...} } of positive integers', () => {
    expect(limitsBody(encoded({ limits: { timeoutMs: 500 } }))).toEqual({ timeoutMs: 500 });
    expect(limitsBody(encoded({ limits: {} }))).toEqual({});
    expect(refusal(() => limitsBody(encoded({ limits: {}, name: 'x' }))).message).toBe('unknown field "name" (only "limits")');
    expect(refusal(() => limitsBody(encoded({ limits: { timeout: 5 } }))).message).toBe('unknown field "limits.timeout" (timeoutMs, memoryBytes, outputBytes)');
    expect(refusal(() => limitsBody(encoded({ limits: { timeoutMs: '5s' } }))).message).toBe('"limits.timeoutMs" must be a positive integer');
    expect(refusal(() => limitsBody(encoded({ limits: { timeoutMs: 1.5 } }))).message).toBe('"limits.timeoutMs" must be a positive integer');
    expect(refusal(() => limitsBody(encoded([]))).code).toBe('bad_request');
    expect(refusal(() => limitsBody(new TextEncoder().encode('{'))).message).toMatch(/^body is not valid JSON/);
  });
});
