/**
 * Whether this machine can run the namespace launcher: root, iproute2, and
 * a kernel (or container) that lets `ip netns add` create a namespace. Tests
 * that need it print the reason when they skip.
 */
import { findIp, ip } from './ip.js';

/** undefined when network namespaces can be used here, else why not. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (run as root, or in a container with CAP_SYS_ADMIN and CAP_NET_ADMIN)';
  if (!findIp()) return 'iproute2 `ip` not found (Debian: apt-get install iproute2)';
  // Named like a network's namespaces, so that a run killed right here has it removed as stale later.
  const probe = `flurry-${process.pid}-probe`;
  try {
    await ip(['netns', 'add', probe]);
  } catch (err) {
    return `\`ip netns add\` was refused: ${(err as Error).message}`;
  }
  try {
    // A bridge and a veth pair inside the namespace: the launcher's other kernel features.
    await ip(['-n', probe, 'link', 'add', 'probe-br', 'type', 'bridge']);
    await ip(['-n', probe, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1']);
  } catch (err) {
    return `a bridge or a veth pair cannot be created in a namespace: ${(err as Error).message}`;
  } finally {
    await ip(['netns', 'del', probe]).catch(() => undefined);
  }
  return undefined;
}
