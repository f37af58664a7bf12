import { createServer } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { ephemeralLow, freePort } from './free-port.js';

describe('freePort', () => {
  it('gives a port below the ephemeral range that can then be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(ephemeralLow());
    const server = createServer();
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('passes over a port something listens on', async () => {
    const held = createServer();
    const port = await freePort();
    await new Promise<void>((resolve, reject) => { held.once('error', reject); held.listen(port, '127.0.0.1', resolve); });
    // The first pick lands on the held port, the second elsewhere.
    const at = (p: number) => (p - 10_000 + 0.5) / (ephemeralLow() - 10_000);
    const other = port === 10_001 ? 10_002 : 10_001;
    const random = vi.spyOn(Math, 'random').mockReturnValueOnce(at(port)).mockReturnValueOnce(at(other));
    try {
      expect(await freePort()).toBe(other);
    } finally {
      random.mockRestore();
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
  });
});
