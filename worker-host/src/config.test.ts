import { describe, expect, it } from 'vitest';
import { loadHostConfig } from './config.js';

describe('loadHostConfig', () => {
  it("takes the host id from its NATS user, and refuses one that disagrees with FLURRY_HOST_ID", () => {
    expect(loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p' }).hostId).toBe('h7');
    expect(loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p', FLURRY_HOST_ID: 'h7' }).hostId).toBe('h7');
    expect(() => loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p', FLURRY_HOST_ID: 'h8' })).toThrow(/FLURRY_HOST_ID/);
    expect(loadHostConfig({}).hostId).toBeUndefined();
  });

  it('takes the replica count of the stores it creates from FLURRY_JS_REPLICAS (1 by default)', () => {
    expect(loadHostConfig({}).jsReplicas).toBe(1);
    expect(loadHostConfig({ FLURRY_JS_REPLICAS: '3' }).jsReplicas).toBe(3);
    expect(() => loadHostConfig({ FLURRY_JS_REPLICAS: 'three' })).toThrow(/FLURRY_JS_REPLICAS/);
  });

  it('takes the call channel address from FLURRY_CALL_CHANNEL (loopback, any port, by default; off turns it off), refusing one without a port', () => {
    expect(loadHostConfig({}).callChannel).toEqual({ host: '127.0.0.1', port: 0, threads: true });
    expect(loadHostConfig({ FLURRY_CALL_CHANNEL: 'off' }).callChannel).toBeUndefined();
    expect(loadHostConfig({ FLURRY_CALL_CHANNEL: '0.0.0.0:7001', FLURRY_CALL_CHANNEL_ADVERTISE: 'h1.internal' }).callChannel).toEqual({ host: '0.0.0.0', port: 7001, advertise: 'h1.internal', threads: true });
    expect(loadHostConfig({ FLURRY_CALL_CHANNEL: '[::1]:7001' }).callChannel).toEqual({ host: '::1', port: 7001, threads: true });
    for (const bad of ['7001', 'host', 'h:99999', 'h:']) expect(() => loadHostConfig({ FLURRY_CALL_CHANNEL: bad }), bad).toThrow(/FLURRY_CALL_CHANNEL/);
  });

  it('lets the call threads read their own calls unless FLURRY_CALL_THREADS is off, refusing another value', () => {
    expect(loadHostConfig({ FLURRY_CALL_THREADS: 'off' }).callChannel).toEqual({ host: '127.0.0.1', port: 0, threads: false });
    expect(loadHostConfig({ FLURRY_CALL_THREADS: 'on' }).callChannel?.threads).toBe(true);
    for (const bad of ['yes', '1', 'OFF']) expect(() => loadHostConfig({ FLURRY_CALL_THREADS: bad }), bad).toThrow(/FLURRY_CALL_THREADS/);
  });

  it('takes round 0\'s longest wait for the instance\'s requests from FLURRY_MIGRATION_YIELD_MAX_MS (32 ms by default, 0: none), refusing a bad one', () => {
    expect(loadHostConfig({}).migrationYieldMaxMs).toBe(32);
    expect(loadHostConfig({ FLURRY_MIGRATION_YIELD_MAX_MS: '0' }).migrationYieldMaxMs).toBe(0);
    for (const bad of ['-1', 'soon', '5000']) expect(() => loadHostConfig({ FLURRY_MIGRATION_YIELD_MAX_MS: bad }), bad).toThrow(/FLURRY_MIGRATION_YIELD_MAX_MS/);
  });
});
