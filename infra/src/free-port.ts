/**
 * Ports for processes this one starts and that bind them moments later (a
 * nats-server, the gateway, a metrics listener), or bind them again after a
 * restart on the same port.
 *
 * The kernel's own pick (`listen(0)`) comes from the ephemeral range, the
 * range every outgoing `connect()` on the machine also draws its local port
 * from: between the pick and the child's bind, or while a process restarts,
 * any connection may take it (CI saw a restarted gateway fail with
 * EADDRINUSE). A port below that range is only ever taken by an explicit
 * bind, so a random one there that is free now leaves only a collision with
 * another such pick (one in thousands of ports, within the same moment).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port picked: clear of the well-known and registered services most machines run. */
const LOWEST = 10_000;
/** Linux's default first ephemeral port, when the range cannot be read. */
const DEFAULT_EPHEMERAL_LOW = 32_768;
const ATTEMPTS = 50;

/** A TCP port on 127.0.0.1 that nothing listens on now and no outgoing connection will take. */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  // A machine whose ephemeral range starts low leaves no room below it: the kernel's pick then.
  if (high - LOWEST < 1000) return kernelPick();
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found below ${high} in ${ATTEMPTS} tries`);
}

/** The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range). */
export function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function kernelPick(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
