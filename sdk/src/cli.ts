#!/usr/bin/env node
/** The `flurry` command-line tool: each command is one SDK call, printed as a table or, with --json, as one JSON document. */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { deployedLine, functionDetails, functionsTable, hostsTable } from './cli-views.js';
import { Flurry } from './client.js';
import { FlurryApiError, FlurryConnectionError, FlurryTimeoutError } from './errors.js';
import type { InvokeResponse } from './invoke-response.js';

/** Bad arguments the parser cannot catch (a malformed header, an unreadable file): exit 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

interface GlobalOptions {
  url: string;
  apiKey?: string;
  json?: boolean;
}

function buildProgram(): Command {
  const program = new Command('flurry')
    .description('Deploy and call WebAssembly functions on a Flurry fleet')
    .version(packageVersion())
    .addOption(new Option('--url <url>', 'gateway URL').env('FLURRY_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--api-key <key>', 'API key, sent as a bearer token').env('FLURRY_API_KEY'))
    .option('--json', 'print exactly one JSON document on stdout')
    // Throw instead of exiting, so that usage errors get exit code 2 in one place (main).
    .exitOverride();

  program
    .command('deploy')
    .description('upload a wasm module as function NAME (creates or replaces it)')
    .argument('<name>', 'function name')
    .argument('<file>', 'wasm module')
    .action(async (name: string, file: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const fn = await flurry.functions.deploy(name, await readInput(file));
      print(json ? fn : deployedLine(fn), json);
    });

  program
    .command('invoke')
    .description("call function NAME over HTTP and print the guest's answer body")
    .argument('<name>', 'function name')
    .addOption(new Option('-d, --data <string>', 'request body').conflicts('dataFile'))
    .option('--data-file <file>', 'request body from a file (- for stdin)')
    .option('-X, --method <method>', 'HTTP method (default: POST with a body, else GET)')
    .option('--path <path>', 'path below the function, may carry a ?query', '/')
    .option('-H, --header <header>', "request header 'name: value' (repeatable)", collect)
    .action(async (name: string, options: InvokeCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      const body = options.dataFile !== undefined ? await readInput(options.dataFile) : options.data;
      const response = await flurry.functions.invoke(name, body, {
        method: options.method,
        path: options.path,
        headers: (options.header ?? []).map(parseHeader),
      });
      if (json) return print(invokeDocument(response), true);
      process.stdout.write(response.body);
      // The body alone cannot say the guest failed; a note on stderr keeps stdout raw.
      if (!response.ok) process.stderr.write(`flurry: ${name} answered HTTP ${response.status}\n`);
    });

  program
    .command('functions')
    .description('list deployed functions')
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const functions = await flurry.functions.list();
      print(json ? functions : functionsTable(functions, Date.now()), json);
    });

  program
    .command('function')
    .description('show function NAME')
    .argument('<name>', 'function name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const fn = await flurry.functions.get(name);
      print(json ? fn : functionDetails(fn, Date.now()), json);
    });

  program
    .command('delete')
    .description('delete function NAME')
    .argument('<name>', 'function name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.functions.delete(name);
      print(json ? { deleted: name } : `deleted ${name}\n`, json);
    });

  program
    .command('hosts')
    .description('list the worker hosts and their load')
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const hosts = await flurry.hosts.list();
      print(json ? hosts : hostsTable(hosts, Date.now()), json);
    });

  return program;
}

interface InvokeCliOptions {
  data?: string;
  dataFile?: string;
  method?: string;
  path: string;
  header?: string[];
}

function context(command: Command): { flurry: Flurry; json: boolean } {
  const options = command.optsWithGlobals<GlobalOptions>();
  let flurry: Flurry;
  try {
    flurry = new Flurry({ url: options.url, apiKey: options.apiKey });
  } catch {
    throw new UsageError(`--url: not a URL: ${options.url}`);
  }
  return { flurry, json: options.json === true };
}

/** Human output is already text; JSON output is exactly one document. */
function print(output: unknown, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(output, null, 2)}\n` : String(output));
}

function invokeDocument(response: InvokeResponse) {
  const text = decodeUtf8Strictly(response.body);
  return {
    status: response.status,
    headers: headersRecord(response.headers),
    body: text ?? Buffer.from(response.body).toString('base64'),
    bodyEncoding: text === undefined ? 'base64' : 'utf8',
    requestId: response.requestId,
    hostId: response.hostId,
    durationMs: response.durationMs,
  };
}

function headersRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

function decodeUtf8Strictly(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function readInput(file: string): Promise<Uint8Array> {
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

function parseHeader(header: string): [string, string] {
  const colon = header.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header: expected 'name: value', got '${header}'`);
  return [header.slice(0, colon).trim(), header.slice(colon + 1).trim()];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function packageVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

/** Prints `error: <code>: <message>` and returns the exit code. */
function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  const [code, message, exitCode] =
    err instanceof UsageError ? ['usage', err.message, EXIT_USAGE]
    : err instanceof FlurryApiError ? [err.code, err.message, EXIT_FAILURE]
    : err instanceof FlurryTimeoutError ? ['timeout', err.message, EXIT_FAILURE]
    : err instanceof FlurryConnectionError ? ['connection', err.message, EXIT_FAILURE]
    : ['internal', err instanceof Error ? (err.stack ?? err.message) : String(err), EXIT_FAILURE];
  process.stderr.write(`error: ${code}: ${message}\n`);
  return exitCode;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
