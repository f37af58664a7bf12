/** `flurry invoke` and `flurry function ls|get|rm`: WebAssembly functions and calling them (`flurry deploy`: cli-deploy-commands.ts). */
import { Command, Option } from 'commander';
import { context, decodeUtf8Strictly, example, print, readInput, UsageError } from './cli-context.js';
import { functionDetails, functionsTable } from './cli-views.js';
import type { InvokeResponse } from './invoke-response.js';

/** `flurry invoke` and the `function` group (also `functions`; `flurry functions` alone lists them). */
export function addFunctionCommands(program: Command): void {
  program
    .command('invoke')
    .description("call function NAME over HTTP and print the guest's answer body")
    .argument('<name>', 'function name')
    .addOption(new Option('-d, --data <string>', 'request body').conflicts('dataFile'))
    .option('--data-file <file>', 'request body from a file (- for stdin)')
    .option('-X, --method <method>', 'HTTP method (default: POST with a body, else GET)')
    .option('--path <path>', 'path below the function, may carry a ?query', '/')
    .option('-H, --header <header>', "request header 'name: value' (repeatable)", collect)
    .addHelpText('after', example(`flurry invoke echo -d 'hi there'`, `flurry invoke wordfreq --path '/?n=3' --data-file README.md`))
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

  const fn = program
    .command('function')
    .alias('functions')
    .description('list, show and delete deployed functions')
    .addHelpText('after', example('flurry functions', 'flurry function get echo'));

  fn.command('ls', { isDefault: true })
    .alias('list')
    .description('list deployed functions')
    .addHelpText('after', example('flurry function ls', 'flurry functions --json'))
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const functions = await flurry.functions.list();
      print(json ? functions : functionsTable(functions, Date.now()), json);
    });

  fn.command('get')
    .description('show function NAME')
    .argument('<name>', 'function name')
    .addHelpText('after', example('flurry function get echo'))
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.functions.get(name);
      print(json ? record : functionDetails(record, Date.now()), json);
    });

  const remove = async (name: string, _options: object, command: Command) => {
    const { flurry, json } = context(command);
    await flurry.functions.delete(name);
    print(json ? { deleted: name } : `deleted ${name}\n`, json);
  };
  fn.command('rm')
    .alias('delete')
    .description('delete function NAME')
    .argument('<name>', 'function name')
    .addHelpText('after', example('flurry function rm echo'))
    .action(remove);
  // The name before the verbs were grouped, kept for scripts.
  program
    .command('delete', { hidden: true })
    .description('delete function NAME (as flurry function rm)')
    .argument('<name>', 'function name')
    .addHelpText('after', example('flurry function rm echo'))
    .action(remove);
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
