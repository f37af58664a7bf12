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
});
