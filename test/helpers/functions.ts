/** The bundled guest programs, built by functions/build.mjs (the test command's set-up builds them). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../infra/src/services.js';

export function guestProgram(name: string): Uint8Array {
  const file = join(repoRoot, 'functions', 'build', `${name}.wasm`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run setup (it builds the guest programs)`);
  return new Uint8Array(readFileSync(file));
}

export async function deploy(url: string, name: string, bytes: Uint8Array): Promise<Response> {
  return fetch(`${url}/v1/functions/${name}`, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/wasm' } });
}
