/** A local port nothing listens on (fetch refuses well-known ones like 1, so pick a real free one). */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Binds an ephemeral port, then releases it. */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
