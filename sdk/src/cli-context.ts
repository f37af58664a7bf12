/** What every `flurry` command shares: the client from the global options, help examples, printing, reading input files, argument parsers and usage errors. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { configPath, readConfig } from './cli-config-file.js';
import { resolveConnection, UnknownContextError } from './cli-connection.js';
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
  url?: string;
  apiKey?: string;
  context?: string;
  json?: boolean;
  requestRetries?: number;
}

/** `timeoutMs` overrides the client's default for commands that legitimately wait long. */
export function context(command: Command, client: { timeoutMs?: number } = {}): { flurry: Flurry; json: boolean } {
  const options = command.optsWithGlobals<GlobalOptions>();
  let connection;
  try {
    // An empty variable (FLURRY_URL=) counts as unset, as shells make it easy to write.
    connection = resolveConnection({
      url: options.url || undefined,
      apiKey: options.apiKey || undefined,
      contextName: options.context || undefined,
      config: readConfig(configPath(process.env)),
      localKey: (url) => findLocalFleetKey(url, process.env, process.cwd()),
    });
  } catch (err) {
    throw err instanceof UnknownContextError ? new UsageError(err.message) : err;
  }
  let flurry: Flurry;
  try {
    flurry = new Flurry({ url: connection.url, apiKey: connection.apiKey, retries: options.requestRetries, ...client });
  } catch {
    throw new UsageError(`--url: not a URL: ${connection.url}`);
  }
  return { flurry, json: options.json === true };
}

/**
 * The text every command's help ends with: how to call it (a unit test checks each command has one).
 *
 * @example
 * program.command('ls').addHelpText('after', example('flurry data ls', 'flurry data ls --json'));
 */
export function example(...commandLines: string[]): string {
  return `\nExample${commandLines.length > 1 ? 's' : ''}:\n${commandLines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

/** The subcommand `name` of `parent` (`subcommand(program, 'job')`), for a file that adds commands to another file's group. */
export function subcommand(parent: Command, name: string): Command {
  const found = parent.commands.find((command) => command.name() === name);
  if (found === undefined) throw new Error(`no command "${name}" under "${parent.name()}"`);
  return found;
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
