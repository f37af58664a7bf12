/** `flurry job ...`: running a fork-join job from files, following it, and printing its result. */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { PlainProgress, TtyProgress, type ProgressReporter } from './cli-job-progress.js';
import { context, decodeUtf8Strictly, example, EXIT_INTERRUPTED, nonNegativeInteger, positiveInteger, print, readInput, UsageError } from './cli-context.js';
import { eventLine, jobDetails, jobsTable } from './cli-views.js';
import { FlurryJobError } from './errors.js';
import type { JobResult, JobSpec } from './jobs.js';

/** The `job` group (also `jobs`; `flurry jobs` alone lists them): `run`, `ls`, `get`, `events`, `cancel`. Made with `program.command` so that they inherit `exitOverride`. */
export function addJobCommands(program: Command): void {
  const job = program
    .command('job')
    .alias('jobs')
    .description('run fork-join jobs and follow them')
    .addHelpText('after', example('flurry job run wordfreq --inputs ./chapters', 'flurry jobs'));

  job
    .command('run')
    .description('run FUNCTION as a job of N clones; prints the result (the reduce output, or the clone outputs in order)')
    .argument('<function>', 'function name')
    .option('--clones <n>', 'number of clones (default: the number of --inputs files)', positiveInteger)
    .addOption(new Option('--tasks <n>', 'work units the clones take as they go, each run by the module\'s run_task(task, tasks); every clone gets --input whole').argParser(positiveInteger).conflicts('inputs'))
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
    .addHelpText('after', example('flurry job run wordfreq --inputs ./chapters --out counts.json', 'flurry job run blast --clones 8 --init-data db.fasta --input queries.fasta',
      'flurry job run render --clones 8 --tasks 256 --init scene.json'))
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
    .command('get')
    .alias('status')
    .description("show job ID: its record and each clone's state")
    .argument('<id>', 'job id')
    .addHelpText('after', example('flurry job get job_mi7x2kq1c4d5e6f7a8b9', 'flurry --json job get job_mi7x2kq1c4d5e6f7a8b9'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.jobs.get(id);
      print(json ? record : jobDetails(record, Date.now()), json);
    });

  job
    .command('events')
    .description("print job ID's events until it ends (--json: one JSON object per line)")
    .argument('<id>', 'job id')
    .addHelpText('after', example('flurry job events job_mi7x2kq1c4d5e6f7a8b9', 'flurry --json job events job_mi7x2kq1c4d5e6f7a8b9'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      for await (const event of flurry.jobs.handle(id).events()) {
        process.stdout.write(json ? `${JSON.stringify(event)}\n` : `${eventLine(event)}\n`);
      }
    });

  job
    .command('cancel')
    .alias('rm')
    .description('cancel job ID (its record stays)')
    .argument('<id>', 'job id')
    .addHelpText('after', example('flurry job cancel job_mi7x2kq1c4d5e6f7a8b9'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.jobs.handle(id).cancel();
      print(json ? record : `${record.id} ${record.state}\n`, json);
    });

  job
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list jobs, newest first')
    .option('--limit <n>', 'jobs per page', positiveInteger)
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .addHelpText('after', example('flurry job ls --limit 20'))
    .action(async (options: { limit?: number; cursor?: string }, command: Command) => {
      const { flurry, json } = context(command);
      const page = await flurry.jobs.list({ limit: options.limit, cursor: options.cursor });
      if (json) return print(page, true);
      print(jobsTable(page.jobs, Date.now()), false);
      if (page.next !== undefined) process.stderr.write(`more: flurry job ls --cursor ${page.next}\n`);
    });
}

interface JobRunCliOptions {
  clones?: number;
  tasks?: number;
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
    tasks: options.tasks,
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
