#!/usr/bin/env node
/** The `flurry` command-line tool: each command is one SDK call, printed as a table or, with --json, as one JSON document. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { context, decodeUtf8Strictly, EXIT_FAILURE, EXIT_USAGE, nonNegativeInteger, print, readInput, UsageError } from './cli-context.js';
import { addDataCommands } from './cli-data-commands.js';
import { addDeployCommand } from './cli-deploy-commands.js';
import { addJobCommands } from './cli-job-commands.js';
import { addHostCommands, addServiceCommands } from './cli-service-commands.js';
import { cloneErrors, functionDetails, functionsTable, hostsTable } from './cli-views.js';
import { FlurryApiError, FlurryConnectionError, FlurryJobError, FlurryTimeoutError } from './errors.js';
import type { InvokeResponse } from './invoke-response.js';

function buildProgram(): Command {
  const program = new Command('flurry')
    .description('Deploy and call WebAssembly functions, run jobs and services on a Flurry fleet')
    .version(packageVersion())
    .addOption(new Option('--url <url>', 'gateway URL').env('FLURRY_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--api-key <key>', 'API key, sent as a bearer token (default for a gateway on this machine: the local fleet\'s admin key, from .flurry/admin.key)').env('FLURRY_API_KEY'))
    .addOption(new Option('--request-retries <n>', 'retries of a request after a 429, a 503 or a lost connection, and reconnects of an event stream (0: none)').env('FLURRY_REQUEST_RETRIES').argParser(nonNegativeInteger))
    .option('--json', 'print exactly one JSON document on stdout')
    // Throw instead of exiting, so that usage errors get exit code 2 in one place (main).
    .exitOverride();

  addDeployCommand(program);

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
    .description('list the worker hosts, their load and state (drained hosts marked releasable)')
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const hosts = await flurry.hosts.list();
      print(json ? hosts : hostsTable(hosts, Date.now()), json);
    });

  addJobCommands(program);
  addDataCommands(program);
  addServiceCommands(program);
  addHostCommands(program);

  return program;
}

interface InvokeCliOptions {
  data?: string;
  dataFile?: string;
  method?: string;
  path: string;
  header?: string[];
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
  if (err instanceof FlurryJobError) {
    const clones = cloneErrors(err.job).map((e) => `  clone ${e.index}: ${e.code}: ${e.message}\n`);
    process.stderr.write(`error: ${err.code}: ${err.message}\n${clones.join('')}`);
    return EXIT_FAILURE;
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
