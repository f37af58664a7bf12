/**
 * The `flurry` command tree: the global options, then one `addXxxCommands(program)` per file
 * of commands. A new group of commands is one more line here.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { example, nonNegativeInteger } from './cli-context.js';
import { addContextCommands } from './cli-context-commands.js';
import { DEFAULT_URL } from './cli-connection.js';
import { addDataCommands } from './cli-data-commands.js';
import { addDeployCommand } from './cli-deploy-commands.js';
import { addFunctionCommands } from './cli-function-commands.js';
import { addHostCommands } from './cli-host-commands.js';
import { addJobCommands } from './cli-job-commands.js';
import { addLogCommands } from './cli-log-commands.js';
import { addServiceCommands } from './cli-service-commands.js';

export function buildProgram(): Command {
  const program = new Command('flurry')
    .description('Deploy and call WebAssembly functions, run jobs and services on a Flurry fleet')
    .version(packageVersion())
    .addOption(new Option('--url <url>', `gateway URL (default: the current context's, else ${DEFAULT_URL})`).env('FLURRY_URL'))
    .addOption(new Option('--api-key <key>', "API key, sent as a bearer token (default: the context's key; for a gateway on this machine, the local fleet's admin key from .flurry/admin.key)").env('FLURRY_API_KEY'))
    .addOption(new Option('--context <name>', 'use this context of the config file instead of the current one (flurry context ls)').env('FLURRY_CONTEXT'))
    .addOption(new Option('--request-retries <n>', 'retries of a request after a 429, a 503 or a lost connection, and reconnects of an event stream (0: none)').env('FLURRY_REQUEST_RETRIES').argParser(nonNegativeInteger))
    .option('--json', 'print exactly one JSON document on stdout')
    .addHelpText('after', example('flurry deploy echo functions/build/echo.wasm', "flurry invoke echo -d 'hi there'", 'flurry --context prod hosts'))
    // Throw instead of exiting, so that usage errors get exit code 2 in one place (cli.ts).
    .exitOverride();

  addDeployCommand(program);
  addFunctionCommands(program);
  addJobCommands(program);
  addDataCommands(program);
  addServiceCommands(program);
  addHostCommands(program);
  addLogCommands(program);
  addContextCommands(program);

  return program;
}

function packageVersion(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}
