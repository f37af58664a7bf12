/**
 * Running iproute2's `ip`: the one way the namespace launcher changes the
 * machine's network configuration. A failure throws with the command and
 * what `ip` printed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The `ip` binary: on the PATH, else the usual Debian places (a non-login root shell may lack /usr/sbin). */
export function findIp(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  return dirs.map((d) => join(d, 'ip')).find((p) => existsSync(p));
}

/** Runs `ip <args>` and resolves with its standard output. */
export function ip(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const bin = findIp();
  if (!bin) return Promise.reject(new Error('iproute2 `ip` not found (Debian: apt-get install iproute2)'));
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: opts.timeoutMs ?? 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Names of the machine's network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  // Lines look like `name` or `name (id: 3)`.
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

/** Process ids running in a namespace (`ip netns pids`). */
export async function namespacePids(namespace: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', namespace]);
  return out.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}
