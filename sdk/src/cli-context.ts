/** What every `flurry` command shares: the client from the global options, printing, reading input files, argument parsers and usage errors. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { Flurry } from './client.js';
import { findLocalFleetKey } from './local-fleet-key.js';

/** Bad arguments the parser cannot catch (a malformed header, an unreadable file): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** As shells report a process ended by SIGINT. */
export const EXIT_INTERRUPTED = 130;

interface GlobalOptions {
  url: string;
  apiKey?: string;
  json?: boolean;
  requestRetries?: number;
}

/** `timeoutMs` overrides the client's default for commands that legitimately wait long. */
export function context(command: Command, client: { timeoutMs?: number } = {}): { flurry: Flurry; json: boolean } {
  const options = command.optsWithGlobals<GlobalOptions>();
  let flurry: Flurry;
  try {
    const apiKey = options.apiKey ?? findLocalFleetKey(options.url, process.env, process.cwd());
    flurry = new Flurry({ url: options.url, apiKey, retries: options.requestRetries, ...client });
  } catch {
    throw new UsageError(`--url: not a URL: ${options.url}`);
  }
  return { flurry, json: options.json === true };
}

/** Human output is already text; JSON output is exactly one document. */
export function print(output: unknown, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(output, null, 2)}\n` : String(output));
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || !/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || !/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a whole number');
  return n;
}

export function decodeUtf8Strictly(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export async function readInput(file: string): Promise<Uint8Array> {
  try {
    if (file === '-') return await readStdin();
    return await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
