import { describe, expect, it } from 'vitest';
import { FlurryError, type FunctionRecord } from '@flurry/core';
import { checkLimits, checkModuleMemory, invokeLimitsOf, type LimitCaps } from './function-limits.js';
import { Hono } from 'hono';
import type { Env } from '../api/api-app.js';
import { errorResponse } from '../http-errors.js';
import { functionLimitsRoutes } from './function-limits-routes.js';

const caps: LimitCaps = { timeoutMs: 15_000, memoryBytes: 1024 ** 3, outputBytes: 4 * 1024 * 1024 };

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

  it('route - PATCH takes exactly { limits: {...} } of positive integers, as JSON', async () => {
    const set: unknown[] = [];
    const app = new Hono<Env>();
    app.onError(errorResponse);
    app.use('*', async (c, next) => {
      c.set('tenant', 'acme');
      await next();
    });
    app.route('/', functionLimitsRoutes({
      maxBodyBytes: 1024,
      registry: { setLimits: async (tenant, name, limits) => (set.push([tenant, name, limits]), { record: { name, limits } as FunctionRecord, changed: true }) },
    }));
    const patch = (body: string, type = 'application/json') => app.request('/v1/functions/echo', { method: 'PATCH', body, headers: { 'content-type': type } });

    const ok = await patch(JSON.stringify({ limits: { timeoutMs: 500 } }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ function: { name: 'echo', limits: { timeoutMs: 500 } } });
    expect(set).toEqual([['acme', 'echo', { timeoutMs: 500 }]]);

    const refused = async (body: string, type?: string) => {
      const res = await patch(body, type);
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { code: string; message: string } }).error;
    };
    expect(await refused(JSON.stringify({ limits: {}, name: 'x' }))).toEqual({ code: 'bad_request', message: 'unknown field "name"' });
    expect(await refused(JSON.stringify({ limits: { timeout: 5 } }))).toEqual({ code: 'bad_request', message: 'unknown field "limits.timeout"' });
    expect((await refused(JSON.stringify({ limits: { timeoutMs: '5s' } }))).message).toMatch(/^"limits.timeoutMs" /);
    expect((await refused(JSON.stringify({ limits: { timeoutMs: 1.5 } }))).message).toMatch(/^"limits.timeoutMs" /);
    expect((await refused(JSON.stringify({ limits: { outputBytes: 0 } }))).message).toMatch(/^"limits.outputBytes" /);
    expect((await refused(JSON.stringify({}))).message).toMatch(/^"limits" /);
    expect(set).toHaveLength(1);
    // A JSON body is read as JSON whatever its label (curl -d, fetch of a string), as on every route.
    expect((await patch(JSON.stringify({ limits: { timeoutMs: 700 } }), 'text/plain')).status).toBe(200);
    expect(set[1]).toEqual(['acme', 'echo', { timeoutMs: 700 }]);
  });
});
