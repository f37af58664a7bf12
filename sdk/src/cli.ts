#!/usr/bin/env node
/** The `flurry` command-line tool: each command is one SDK call, printed as a table or, with --json, as one JSON document. */
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PlainProgress, TtyProgress, type ProgressReporter } from './cli-job-progress.js';
import {
  cloneErrors,
  dataTable,
  deployedLine,
  drainDetails,
  eventLine,
  functionDetails,
  functionsTable,
  hostsTable,
  jobDetails,
  jobsTable,
  migrationDetails,
  serviceDetails,
  serviceLine,
  servicesTable,
} from './cli-views.js';
import { Flurry } from './client.js';
import { findLocalFleetKey } from './local-fleet-key.js';
import { formatBytes } from './human-units.js';
import { FlurryApiError, FlurryConnectionError, FlurryJobError, FlurryTimeoutError } from './errors.js';
import type { InvokeResponse } from './invoke-response.js';
import type { JobResult, JobSpec } from './jobs.js';

/** Bad arguments the parser cannot catch (a malformed header, an unreadable file): exit 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/** As shells report a process ended by SIGINT. */
const EXIT_INTERRUPTED = 130;

interface GlobalOptions {
  url: string;
  apiKey?: string;
  json?: boolean;
  requestRetries?: number;
}

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

/** `flurry job run|status|logs|cancel|list`; made with `program.command` so that they inherit `exitOverride`. */
function addJobCommands(program: Command): void {
  const job = program.command('job').description('run fork-join jobs and follow them');

  job
    .command('run')
    .description('run FUNCTION as a job of N clones; prints the result (the reduce output, or the clone outputs in order)')
    .argument('<function>', 'function name')
    .option('--clones <n>', 'number of clones (default: the number of --inputs files)', positiveInteger)
    .addOption(new Option('--init <file>', "input of the parent's init() (- for stdin)").conflicts('initData'))
    .option('--init-data <name>', "uploaded data (flurry data put) as the input of the parent's init()")
    .addOption(new Option('--boot <mode>', 'fork: clones of one snapshotted parent; cold: every clone boots and runs init itself').choices(['fork', 'cold']))
    .option('--no-keep-parent', 'free the parent when the job ends instead of keeping it for later jobs with the same init')
    .addOption(new Option('--input <file>', 'input of every clone (- for stdin)').conflicts('inputs'))
    .option('--inputs <dir>', "one input per clone: the directory's files in name order")
    .option('--out <file>', 'write the result to FILE instead of stdout')
    .option('--retries <n>', 'restarts of a failed clone', nonNegativeInteger)
    .option('--timeout <ms>', 'time limit of each clone, in milliseconds', positiveInteger)
    .option('--no-reduce', "keep each clone's output instead of running the function's reduce")
    .option('--idempotency-key <key>', 'run this job once: the same command again follows the same job')
    .action(async (fn: string, options: JobRunCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      const spec = await jobSpec(fn, options, command.getOptionValueSource('reduce') !== 'default');
      const handle = await flurry.jobs.submit(spec);
      const tty = process.stderr.isTTY === true;
      const reporter: ProgressReporter = tty ? new TtyProgress(process.stderr) : new PlainProgress(process.stderr);
      // The bar does not show the id; the plain lines do (in the first, `state`, line).
      if (tty) process.stderr.write(`job ${handle.id}\n`);
      // Ctrl-C stops following, not the job: say how to stop it too.
      const onInterrupt = () => {
        reporter.finish();
        process.stderr.write(`flurry: stopped following job ${handle.id}; it keeps running (flurry job cancel ${handle.id} stops it)\n`);
        process.exit(EXIT_INTERRUPTED);
      };
      process.once('SIGINT', onInterrupt);
      let record;
      try {
        record = await handle.wait({ onEvent: (event) => reporter.event(event) });
      } catch (err) {
        // The failed record is worth a script's while: it names each clone's error.
        if (err instanceof FlurryJobError && json) print({ job: err.job, result: null }, true);
        throw err;
      } finally {
        process.off('SIGINT', onInterrupt);
        reporter.finish();
      }
      const result = await handle.result();
      const bytes = result instanceof Uint8Array ? result : concatBytes(result);
      if (options.out !== undefined) await writeOutput(options.out, bytes);
      if (json) print({ job: record, ...resultDocument(result) }, true);
      else if (options.out === undefined) process.stdout.write(bytes);
    });

  job
    .command('status')
    .description("show job ID: its record and each clone's state")
    .argument('<id>', 'job id')
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.jobs.get(id);
      print(json ? record : jobDetails(record, Date.now()), json);
    });

  job
    .command('logs')
    .description("print job ID's events until it ends (--json: one JSON object per line)")
    .argument('<id>', 'job id')
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      for await (const event of flurry.jobs.handle(id).events()) {
        process.stdout.write(json ? `${JSON.stringify(event)}\n` : `${eventLine(event)}\n`);
      }
    });

  job
    .command('cancel')
    .description('cancel job ID')
    .argument('<id>', 'job id')
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.jobs.handle(id).cancel();
      print(json ? record : `${record.id} ${record.state}\n`, json);
    });

  job
    .command('list')
    .description('list jobs, newest first')
    .option('--limit <n>', 'jobs per page', positiveInteger)
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .action(async (options: { limit?: number; cursor?: string }, command: Command) => {
      const { flurry, json } = context(command);
      const page = await flurry.jobs.list({ limit: options.limit, cursor: options.cursor });
      if (json) return print(page, true);
      print(jobsTable(page.jobs, Date.now()), false);
      if (page.next !== undefined) process.stderr.write(`more: flurry job list --cursor ${page.next}\n`);
    });
}

/** `flurry data put|ls|get|rm`: data uploaded once and used by jobs as their init input (`--init-data`). */
function addDataCommands(program: Command): void {
  const data = program.command('data').description('upload data that jobs use as their init input (--init-data)');

  data
    .command('put')
    .description('upload FILE as data NAME (replaces it)')
    .argument('<name>', 'data name')
    .argument('<file>', 'the bytes (- for stdin)')
    .action(async (name: string, file: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.data.put(name, await readInput(file));
      print(json ? record : `${record.name} ${formatBytes(record.bytes)} ${record.digest}\n`, json);
    });

  data
    .command('ls')
    .description('list uploaded data')
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const records = await flurry.data.list();
      print(json ? records : dataTable(records, Date.now()), json);
    });

  data
    .command('get')
    .description("show data NAME's size, digest and age")
    .argument('<name>', 'data name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.data.get(name);
      print(json ? record : dataTable([record], Date.now()), json);
    });

  data
    .command('rm')
    .description('delete data NAME')
    .argument('<name>', 'data name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.data.delete(name);
      print(json ? { deleted: name } : `deleted ${name}\n`, json);
    });
}

/** `flurry service create|ls|get|scale|rm` and `flurry instance migrate`: long-lived services and their instances. */
function addServiceCommands(program: Command): void {
  const service = program.command('service').description('run long-lived services: persistent instances of a function, scaled by the gateway');

  service
    .command('create')
    .description('create service NAME of FUNCTION; it starts --min instances in the background')
    .argument('<name>', 'service name')
    .requiredOption('--function <fn>', 'the deployed function its instances run')
    .option('--init <file>', "input of the instances' parent's init() (- for stdin)")
    .option('--init-data <name>', "uploaded data (flurry data put) as the input of the parent's init()")
    .option('--min <n>', 'instances kept at least (default 1)', nonNegativeInteger)
    .option('--max <n>', 'instances at most (default: --min)', positiveInteger)
    .option('--target <n>', 'requests in flight per instance the autoscaler aims at (default 8)', positiveInteger)
    .action(async (name: string, options: ServiceCreateCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.services.create({
        name,
        function: options.function,
        init: options.init === undefined ? undefined : await readInput(options.init),
        initData: options.initData,
        min: options.min,
        max: options.max,
        targetConcurrency: options.target,
      });
      print(json ? record : serviceLine('created', record), json);
    });

  service
    .command('ls')
    .description('list services')
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const services = await flurry.services.list();
      print(json ? services : servicesTable(services, Date.now()), json);
    });

  service
    .command('get')
    .description('show service NAME and a row per instance')
    .argument('<name>', 'service name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.services.get(name);
      print(json ? record : serviceDetails(record, Date.now()), json);
    });

  service
    .command('scale')
    .description("change service NAME's bounds; waits until instances up to --min exist and those above --max are gone")
    .argument('<name>', 'service name')
    .option('--min <n>', 'instances kept at least', nonNegativeInteger)
    .option('--max <n>', 'instances at most', positiveInteger)
    .option('--target <n>', 'requests in flight per instance the autoscaler aims at', positiveInteger)
    .action(async (name: string, options: { min?: number; max?: number; target?: number }, command: Command) => {
      const { flurry, json } = context(command);
      if (options.min === undefined && options.max === undefined && options.target === undefined) {
        throw new UsageError('service scale: give --min, --max or --target');
      }
      const record = await flurry.services.update(name, { min: options.min, max: options.max, targetConcurrency: options.target });
      print(json ? record : serviceLine('scaled', record), json);
    });

  service
    .command('rm')
    .description('delete service NAME and destroy its instances')
    .argument('<name>', 'service name')
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.services.delete(name);
      print(json ? { deleted: name } : `deleted ${name}\n`, json);
    });

  const instance = program.command('instance').description('move service instances between hosts');

  instance
    .command('migrate')
    .description('live-migrate instance ID (memory and globals) to another host; prints the report')
    .argument('<id>', 'instance id (flurry service get NAME lists them)')
    .option('--to <host>', 'target host (default: the live, non-draining host with most free slots)')
    .option('--max-rounds <n>', 'pre-copy rounds at most (default 30); 0: stop-and-copy only', nonNegativeInteger)
    .action(async (id: string, options: { to?: string; maxRounds?: number }, command: Command) => {
      const { flurry, json } = context(command);
      const report = await flurry.services.migrate(id, { target: options.to, maxRounds: options.maxRounds });
      print(json ? report : migrationDetails(id, report), json);
    });
}

/** `flurry host drain|activate`: take a host out of service (its instances migrate away) and back. */
function addHostCommands(program: Command): void {
  const host = program.command('host').description('take a worker host out of service and back');

  host
    .command('drain')
    .description('drain host ID: nothing new goes there and its service instances migrate away; exits 1 if one could not be moved')
    .argument('<id>', 'host id')
    .action(async (id: string, _options: object, command: Command) => {
      // A drain migrates instances one after another; the gateway itself gives up after 10 minutes.
      const { flurry, json } = context(command, { timeoutMs: 0 });
      const drain = await flurry.hosts.drain(id);
      print(json ? drain : drainDetails(drain), json);
      // The host stays draining: a script must not release it.
      if (drain.failed.length > 0) process.exitCode = EXIT_FAILURE;
    });

  host
    .command('activate')
    .description('put draining or drained host ID back to work')
    .argument('<id>', 'host id')
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.hosts.activate(id);
      print(json ? { activated: id } : `activated ${id}\n`, json);
    });
}

interface ServiceCreateCliOptions {
  function: string;
  init?: string;
  initData?: string;
  min?: number;
  max?: number;
  target?: number;
}

interface JobRunCliOptions {
  clones?: number;
  init?: string;
  initData?: string;
  boot?: 'fork' | 'cold';
  keepParent: boolean;
  input?: string;
  inputs?: string;
  out?: string;
  retries?: number;
  timeout?: number;
  reduce: boolean;
  idempotencyKey?: string;
}

async function jobSpec(fn: string, options: JobRunCliOptions, reduceGiven: boolean): Promise<JobSpec> {
  const inputs = options.inputs === undefined ? undefined : await readInputsDirectory(options.inputs);
  if (inputs !== undefined && options.clones !== undefined && options.clones !== inputs.length) {
    throw new UsageError(`--inputs: ${options.inputs} has ${inputs.length} files, but --clones is ${options.clones}`);
  }
  if (inputs !== undefined && inputs.length === 0) throw new UsageError(`--inputs: ${options.inputs} has no files`);
  const clones = options.clones ?? inputs?.length;
  if (clones === undefined) throw new UsageError('--clones is required (or --inputs DIR, one clone per file)');
  return {
    function: fn,
    clones,
    init: options.init === undefined ? undefined : await readInput(options.init),
    initData: options.initData,
    boot: options.boot,
    // Only an explicit --no-keep-parent is sent: the gateway keeps parents by default.
    keepParent: options.keepParent ? undefined : false,
    input: options.input === undefined ? undefined : await readInput(options.input),
    inputs,
    retries: options.retries,
    timeoutMs: options.timeout,
    // Only an explicit --no-reduce is sent; otherwise the gateway decides (reduce when the function has one).
    reduce: reduceGiven ? options.reduce : undefined,
    idempotencyKey: options.idempotencyKey,
  };
}

/** The regular files of `dir` in name order (code-point order, as `ls` does in the C locale). */
async function readInputsDirectory(dir: string): Promise<Uint8Array[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (err) {
    throw new UsageError(`cannot read ${dir}: ${(err as Error).message}`);
  }
  const files: Uint8Array[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if ((await stat(path).catch(() => undefined))?.isFile()) files.push(await readInput(path));
  }
  return files;
}

async function writeOutput(file: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(file, bytes);
  } catch (err) {
    throw new UsageError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** `result` as text when every part is UTF-8, else base64; an array without a reduce. */
function resultDocument(result: JobResult): { result: string | string[]; resultEncoding: 'utf8' | 'base64' } {
  const parts = result instanceof Uint8Array ? [result] : result;
  const texts = parts.map(decodeUtf8Strictly);
  const utf8 = texts.every((text) => text !== undefined);
  const encoded = parts.map((part, i) => (utf8 ? (texts[i] as string) : Buffer.from(part).toString('base64')));
  return { result: result instanceof Uint8Array ? encoded[0] : encoded, resultEncoding: utf8 ? 'utf8' : 'base64' };
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || !/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || !/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a whole number');
  return n;
}

interface InvokeCliOptions {
  data?: string;
  dataFile?: string;
  method?: string;
  path: string;
  header?: string[];
}

/** `timeoutMs` overrides the client's default for commands that legitimately wait long. */
function context(command: Command, client: { timeoutMs?: number } = {}): { flurry: Flurry; json: boolean } {
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
