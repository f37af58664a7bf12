#!/usr/bin/env node
/** The `flurry` command-line tool (sdk/bin/flurry.js loads it): each command is one SDK call, printed as a table or, with --json, as one JSON document. */
import { CommanderError } from 'commander';
import { ConfigFileError } from './cli-config-file.js';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './cli-context.js';
import { buildProgram } from './cli-program.js';
import { cloneErrors } from './cli-views.js';
import { FlurryApiError, FlurryConnectionError, FlurryJobError, FlurryTimeoutError } from './errors.js';

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
    // The config file is the user's input as much as the arguments are.
    : err instanceof ConfigFileError ? ['config', err.message, EXIT_USAGE]
    : err instanceof FlurryApiError ? [err.code, err.message, EXIT_FAILURE]
    : err instanceof FlurryTimeoutError ? ['timeout', err.message, EXIT_FAILURE]
    : err instanceof FlurryConnectionError ? ['connection', err.message, EXIT_FAILURE]
    : ['internal', err instanceof Error ? (err.stack ?? err.message) : String(err), EXIT_FAILURE];
  process.stderr.write(`error: ${code}: ${message}\n`);
  return exitCode;
}

// `flurry ... | head` closes the pipe early: end quietly, as other command-line tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
