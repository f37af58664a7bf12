/** Where the compiled guest thread script is, whether the pool runs compiled or from its TypeScript source (under vitest). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function guestThreadScript(): URL {
  // Worker threads need JavaScript: from src/guest/*.ts the script is in the build output next door.
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? '../../dist/guest/guest-thread.js' : './guest-thread.js', import.meta.url);
  if (!existsSync(url)) throw new Error(`the guest thread script ${fileURLToPath(url)} is missing; build it first with "npx tsc -b worker-host"`);
  return url;
}
