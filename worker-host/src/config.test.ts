import { describe, expect, it } from 'vitest';
import { loadHostConfig } from './config.js';

describe('loadHostConfig', () => {
  it("takes the host id from its NATS user, and refuses one that disagrees with FLURRY_HOST_ID", () => {
    expect(loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p' }).hostId).toBe('h7');
    expect(loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p', FLURRY_HOST_ID: 'h7' }).hostId).toBe('h7');
    expect(() => loadHostConfig({ NATS_USER: 'host-h7', NATS_PASSWORD: 'p', FLURRY_HOST_ID: 'h8' })).toThrow(/FLURRY_HOST_ID/);
    expect(loadHostConfig({}).hostId).toBeUndefined();
  });
});
