/**
 * The local fleet's admin key, for the CLI when no `--api-key` or
 * FLURRY_API_KEY is given: `npm start` keeps it in its state folder as
 * `admin.key` (infra/src/local-admin-key.ts writes it; FLURRY_DATA_DIR, by
 * default `.flurry/` in the repository). It is used only for a gateway on
 * this machine (a loopback URL), so the local key never goes to another one.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The file's name in the state folder; the launcher writes the same name. */
export const LOCAL_KEY_FILE = 'admin.key';

/** The local fleet's key for `url`, or undefined when the URL is not loopback or no key file is found. */
export function findLocalFleetKey(url: string, env: Record<string, string | undefined>, cwd: string): string | undefined {
  if (!isLoopback(url)) return undefined;
  const dataDir = env.FLURRY_DATA_DIR?.trim();
  if (dataDir) return readKey(join(dataDir, LOCAL_KEY_FILE));
  // From the working directory up, as git finds its folder: the CLI works anywhere inside the repository.
  for (let dir = cwd; ; dir = dirname(dir)) {
    const key = readKey(join(dir, '.flurry', LOCAL_KEY_FILE));
    if (key !== undefined || dirname(dir) === dir) return key;
  }
}

function isLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function readKey(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
