/** `flurry logs NAME`, `flurry job logs ID` and `flurry service logs NAME`: what guests logged, printed once or followed. */
import { InvalidArgumentError, type Command } from 'commander';
import { context, example, nonNegativeInteger, positiveInteger, print, subcommand } from './cli-context.js';
import type { GuestLogLine, JobLogOptions } from './logs.js';

interface LogCliOptions {
  follow?: boolean;
  limit?: number;
  since?: string;
  clone?: number | 'reduce';
}

/**
 * One line as text: time, level, what ran, message.
 *
 * @example
 * logLine({ at: 0, level: 'warn', message: 'slow', requestId: 'r', hostId: 'h', jobId: 'j', clone: 3 }); // '1970-01-01T00:00:00.000Z warn  clone 3  slow'
 */
export function logLine(line: GuestLogLine): string {
  const ran = line.clone !== undefined ? (line.clone === 'reduce' ? 'reduce' : `clone ${line.clone}`)
    : line.instanceId !== undefined ? line.instanceId : line.requestId;
  return `${new Date(line.at).toISOString()} ${line.level.padEnd(5)} ${ran}  ${line.message}`;
}

/** `flurry logs` and the `logs` commands of the `job` and `service` groups (made before, by their own files). */
export function addLogCommands(program: Command): void {
  withLogOptions(program
    .command('logs')
    .description("print what function NAME's calls logged: the last lines, or with --follow those and each new one (--json: one JSON object per line with --follow)")
    .argument('<name>', 'function name'))
    .addHelpText('after', example('flurry logs resize --since 10m --follow'))
    .action(async (name: string, options: LogCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      await printLines(options.follow ? flurry.functions.logs(name, { ...logOptions(options), follow: true }) : flurry.functions.logs(name, logOptions(options)), json);
    });

  withLogOptions(subcommand(program, 'job')
    .command('logs')
    .description("print what job ID's clones and reduce logged, or one clone's (--clone); --follow keeps printing new lines")
    .argument('<id>', 'job id')
    .option('--clone <i>', "one clone's lines: its index, or reduce", cloneArgument))
    .addHelpText('after', example('flurry job logs job-1b2c --clone 3'))
    .action(async (id: string, options: LogCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      const jobOptions: JobLogOptions = { ...logOptions(options), clone: options.clone };
      await printLines(options.follow ? flurry.jobs.logs(id, { ...jobOptions, follow: true }) : flurry.jobs.logs(id, jobOptions), json);
    });

  withLogOptions(subcommand(program, 'service')
    .command('logs')
    .description("print what service NAME's instances logged, every instance's (each line names its instance)")
    .argument('<name>', 'service name'))
    .addHelpText('after', example('flurry service logs chat --since 1h'))
    .action(async (name: string, options: LogCliOptions, command: Command) => {
      const { flurry, json } = context(command);
      await printLines(options.follow ? flurry.services.logs(name, { ...logOptions(options), follow: true }) : flurry.services.logs(name, logOptions(options)), json);
    });
}

function withLogOptions(command: Command): Command {
  return command
    .option('-f, --follow', 'keep printing new lines as they are stored (Ctrl-C stops)')
    .option('--limit <n>', 'how many of the last lines (default 100, at most 10000)', positiveInteger)
    .option('--since <time>', 'only lines of runs that ended since: a duration ago (30s, 10m, 2h, 1d), a time (2026-12-06T12:00:00Z) or ms since the epoch');
}

function logOptions(options: LogCliOptions): JobLogOptions {
  return { limit: options.limit, since: options.since };
}

/** The lines as text, or JSON: one document when read once, one object per line when followed (the stream has no end). */
async function printLines(lines: Promise<GuestLogLine[]> | AsyncGenerator<GuestLogLine>, json: boolean): Promise<void> {
  if (lines instanceof Promise) {
    const all = await lines;
    return print(json ? all : all.map((line) => `${logLine(line)}\n`).join(''), json);
  }
  for await (const line of lines) process.stdout.write(json ? `${JSON.stringify(line)}\n` : `${logLine(line)}\n`);
}

function cloneArgument(value: string): number | 'reduce' {
  if (value === 'reduce') return value;
  try {
    return nonNegativeInteger(value);
  } catch {
    throw new InvalidArgumentError("expected a clone's index or reduce");
  }
}
