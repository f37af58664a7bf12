/** The bundled guest programs, built by functions/build.mjs (the test command's set-up builds them). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../infra/src/services.js';

export function guestProgram(name: string): Uint8Array {
  const file = guestFile(name);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run setup (it builds the guest programs)`);
  return new Uint8Array(readFileSync(file));
}

/**
 * Why the C guests among `names` cannot be had here, or undefined. The set-up skips the C guests
 * (and says why) on a machine without clang for wasm32-wasi; their tests skip with this reason.
 */
export function missingCGuests(...names: string[]): string | undefined {
  const absent = names.filter((name) => !existsSync(guestFile(name)));
  if (absent.length === 0) return undefined;
  const reason = `functions/build lacks ${absent.map((name) => `${name}.wasm`).join(', ')}: the C guests need clang for wasm32-wasi (npm run setup says what is missing)`;
  console.warn(`skipped: ${reason}`);
  return reason;
}

function guestFile(name: string): string {
  return join(repoRoot, 'functions', 'build', `${name}.wasm`);
}

export async function deploy(url: string, name: string, bytes: Uint8Array): Promise<Response> {
  return fetch(`${url}/v1/functions/${name}`, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/wasm' } });
}
