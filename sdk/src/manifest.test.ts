import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest, planChanges, type DesiredFunction, type Manifest } from './manifest.js';
import type { FunctionRecord, ServiceRecord } from './types.js';

const GOOD = `
functions:
  echo:
    module: build/echo.wasm
  spin:
    build: node build.mjs spin
    module: build/spin.wasm
    limits:
      timeoutMs: 500
      memoryBytes: 67108864
services:
  chat:
    function: echo
    min: 1
    max: 3
    init: hello
`;

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return (err as Error).message;
  }
  throw new Error('expected a ManifestError');
}

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);

function fn(name: string, digest: string, limits?: FunctionRecord['limits']): FunctionRecord {
  return { tenant: 't', name, digest, size: 1, exports: ['handle'], memory: { initialPages: 1, maximumPages: 1024 }, ...(limits && { limits }), createdAt: 0, updatedAt: 0 };
}

function service(over: Partial<ServiceRecord> = {}): ServiceRecord {
  return { tenant: 't', name: 'chat', function: 'echo', digest: D1, init: btoa('hello'), min: 1, max: 3, targetConcurrency: 8, createdAt: 0, updatedAt: 0, instances: [], ...over };
}

describe('manifest parse', () => {
  it('parse - reads functions with build, module and limits, and services', () => {
    const m = parseManifest(GOOD, 'flurry.yaml');
    expect(m.functions.spin).toEqual({ build: 'node build.mjs spin', module: 'build/spin.wasm', limits: { timeoutMs: 500, memoryBytes: 67108864 } });
    expect(m.services.chat).toEqual({ function: 'echo', min: 1, max: 3, init: 'hello' });
    expect(parseManifest('', 'empty.yaml')).toEqual({ functions: {}, services: {} });
  });

  it('parse - an unknown key is refused naming its path and line', () => {
    const text = GOOD.replace('      timeoutMs: 500', '      timeout: 500');
    expect(refusal(() => parseManifest(text, 'flurry.yaml'))).toBe('flurry.yaml:9: functions.spin.limits.timeout: unknown key');
    expect(refusal(() => parseManifest('functions: {}\nfunctoins: {}\n', 'f.yaml'))).toBe('f.yaml:2: functoins: unknown key');
  });

  it('parse - a wrong value is refused naming its path and line', () => {
    expect(refusal(() => parseManifest(GOOD.replace('timeoutMs: 500', 'timeoutMs: 0.5'), 'flurry.yaml'))).toMatch(/^flurry\.yaml:9: functions\.spin\.limits\.timeoutMs: /);
    expect(refusal(() => parseManifest(GOOD.replace('    module: build/echo.wasm\n', '    build: make\n'), 'flurry.yaml'))).toBe('flurry.yaml:3: functions.echo.module: missing (required)');
    expect(refusal(() => parseManifest('functions:\n  Bad_Name:\n    module: x.wasm\n', 'f.yaml'))).toMatch(/^f\.yaml:2: functions\.Bad_Name: name must be 1-63 lower-case/);
    expect(refusal(() => parseManifest('services:\n  s:\n    function: echo\n    init: a\n    initData: b\n', 'f.yaml'))).toBe('f.yaml:2: services.s: give init or initData, not both');
  });

  it('parse - bad YAML and a repeated key are refused with their line', () => {
    expect(refusal(() => parseManifest('functions:\n  echo: [1\n', 'f.yaml'))).toMatch(/^f\.yaml:\d+: /);
    expect(refusal(() => parseManifest('functions:\n  echo:\n    module: a.wasm\n  echo:\n    module: b.wasm\n', 'f.yaml'))).toBe('f.yaml:4: Map keys must be unique');
    expect(refusal(() => parseManifest('- just\n- a list\n', 'f.yaml'))).toMatch(/^f\.yaml:1: \(top level\): /);
  });
});

describe('manifest plan', () => {
  const manifest: Manifest = parseManifest(GOOD, 'flurry.yaml');
  const desired: DesiredFunction[] = [
    { name: 'echo', digest: D1, limits: {} },
    { name: 'spin', digest: D2, limits: { timeoutMs: 500, memoryBytes: 67108864 } },
  ];

  it('plan - an empty fleet: everything is created, functions before services', () => {
    const plan = planChanges(manifest, desired, { functions: [], services: [] });
    expect(plan.map((c) => [c.kind, c.name, c.action])).toEqual([['function', 'echo', 'create'], ['function', 'spin', 'create'], ['service', 'chat', 'create']]);
    expect(plan[1]).toMatchObject({ upload: true, limits: { timeoutMs: 500, memoryBytes: 67108864 } });
    expect(plan[0]).toMatchObject({ upload: true, limits: undefined });
  });

  it('plan - a fleet as the manifest says: nothing changes', () => {
    const plan = planChanges(manifest, desired, { functions: [fn('echo', D1), fn('spin', D2, { timeoutMs: 500, memoryBytes: 67108864 })], services: [service()] });
    expect(plan.map((c) => c.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(plan.flatMap((c) => c.changes)).toEqual([]);
  });

  it('plan - only what differs changes: a limit, a module, a service bound', () => {
    const plan = planChanges(manifest, desired, {
      functions: [fn('echo', D2), fn('spin', D2, { timeoutMs: 1000, memoryBytes: 67108864 })],
      services: [service({ max: 5, targetConcurrency: 4 })],
    });
    expect(plan[0]).toMatchObject({ action: 'update', upload: true, limits: undefined, changes: [`digest ${D2.slice(0, 12)} -> ${D1.slice(0, 12)}`] });
    expect(plan[1]).toMatchObject({ action: 'update', upload: false, limits: { timeoutMs: 500, memoryBytes: 67108864 }, changes: ['limits.timeoutMs 1000 -> 500'] });
    // targetConcurrency is not in the manifest: left as it is.
    expect(plan[2]).toMatchObject({ action: 'update', spec: { function: 'echo', max: 3 }, changes: ['max 5 -> 3'] });
  });

  it('plan - limits left out of the manifest go back to the defaults', () => {
    const plan = planChanges(manifest, desired, { functions: [fn('echo', D1, { outputBytes: 2048 }), fn('spin', D2, { timeoutMs: 500, memoryBytes: 67108864 })], services: [service()] });
    expect(plan[0]).toMatchObject({ action: 'update', upload: false, limits: {}, changes: ['limits.outputBytes 2048 -> default'] });
  });

  it('plan - the memory limit is set before the module when raised, after it when lowered', () => {
    const raised = planChanges(manifest, desired, { functions: [fn('spin', D1, { memoryBytes: 65536 })], services: [] });
    expect(raised.find((c) => c.name === 'spin')).toMatchObject({ upload: true, limitsFirst: true });
    const lowered = planChanges(manifest, desired, { functions: [fn('spin', D1, { memoryBytes: 1024 ** 3 })], services: [] });
    expect(lowered.find((c) => c.name === 'spin')).toMatchObject({ upload: true, limitsFirst: false });
    const limitDropped = planChanges(manifest, [{ name: 'spin', digest: D1, limits: {} }], { functions: [fn('spin', D2, { memoryBytes: 65536 })], services: [] });
    expect(limitDropped[0]).toMatchObject({ limitsFirst: true });
  });

  it('plan - a service whose function or init differs is refused naming the path', () => {
    expect(refusal(() => planChanges(manifest, desired, { functions: [], services: [service({ function: 'spin' })] }, 'flurry.yaml'))).toMatch(
      /^flurry\.yaml: services\.chat\.function: differs from the deployed service's \(spin\); .*flurry service rm chat/,
    );
    expect(refusal(() => planChanges(manifest, desired, { functions: [], services: [service({ init: btoa('other') })] }, 'flurry.yaml'))).toMatch(/^flurry\.yaml: services\.chat\.init: /);
  });
});
