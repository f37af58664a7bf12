/**
 * A TCP listener for the host's own streams (the call channel, the call threads' connections, a migration's page
 * stream): Nagle off, listening before it resolves, and the address a peer is told to connect to.
 */
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';

export interface TcpListenAt {
  host: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** What peers are told (default: the listen address, or this machine's name for a wildcard). */
  advertise?: string;
}

export async function listenTcp(at: TcpListenAt): Promise<{ server: Server; address: { host: string; port: number } }> {
  const server = createServer({ noDelay: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port ?? 0, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const wildcard = at.host === '0.0.0.0' || at.host === '::';
  return { server, address: { host: at.advertise ?? (wildcard ? hostname() : at.host), port } };
}
