import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader } from './config.js';

describe('config', () => {
  it('int - defaults, parses, and names the variable on bad values', () => {
    expect(new EnvReader({}).int('X', 5)).toBe(5);
    expect(new EnvReader({ X: ' 12 ' }).int('X', 5)).toBe(12);
    expect(() => new EnvReader({ X: 'abc' }).int('X', 5)).toThrow(new ConfigError('X must be an integer, got "abc"'));
    expect(() => new EnvReader({ X: '0' }).int('X', 5, { min: 1 })).toThrow(/X must be at least 1/);
  });

  it('bytes - accepts units', () => {
    expect(new EnvReader({ B: '4MiB' }).bytes('B', 0)).toBe(4 * 1024 * 1024);
    expect(new EnvReader({ B: '64k' }).bytes('B', 0)).toBe(65536);
    expect(() => new EnvReader({ B: '4 lots' }).bytes('B', 0)).toThrow(/B must be a size/);
  });

  it('natsServers and oneOf - reject malformed values', () => {
    expect(new EnvReader({ N: 'nats://a:1,b:2' }).natsServers('N', '')).toEqual(['nats://a:1', 'b:2']);
    expect(() => new EnvReader({ N: 'http://x' }).natsServers('N', '')).toThrow(/N must be nats:\/\/host:port/);
    expect(() => new EnvReader({ P: 'fast' }).oneOf('P', ['a', 'b'] as const, 'a')).toThrow(/P must be one of a, b/);
  });
});
