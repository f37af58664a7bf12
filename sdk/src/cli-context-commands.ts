/** `flurry context add|use|ls|get|rm`: named gateways and keys in the config file (cli-config-file.ts). */
import { Option, type Command } from 'commander';
import { addContext, ConfigFileError, configPath, noSuchContext, readConfig, removeContext, useContext, writeConfig, type CliConfig, type ContextEntry } from './cli-config-file.js';
import { example, print, readInput, UsageError } from './cli-context.js';
import { formatFields, formatTable } from './table.js';

/** The `context` group; these commands read and write the config file only, never a gateway. */
export function addContextCommands(program: Command): void {
  const contexts = program
    .command('context')
    .alias('contexts')
    .description('name gateways and their API keys, and pick the one commands use (kept in $FLURRY_CONFIG or ~/.config/flurry/config.yaml)')
    .addHelpText('after', example('flurry context add prod --url https://flurry.example.com --key-file prod.key', 'flurry context use prod'));

  contexts
    .command('add')
    .description('add or replace context NAME with --url URL and its key; the first context added becomes the current one')
    .argument('<name>', 'context name')
    // --url is the global option (commander gives it to the root whatever its place); here it must be given.
    .addOption(new Option('--key <key>', 'API key (it stays in your shell history: --key-file avoids that)').conflicts('keyFile'))
    .option('--key-file <file>', 'read the API key from FILE (- for stdin)')
    .addHelpText('after', example('flurry context add prod --url https://flurry.example.com --key-file prod.key', 'flurry context add local --url http://127.0.0.1:8080 --key "$(cat .flurry/admin.key)"'))
    .action(async (name: string, options: { key?: string; keyFile?: string }, command: Command) => {
      const url = givenUrl(command);
      const key = options.keyFile === undefined ? options.key : new TextDecoder().decode(await readInput(options.keyFile)).trim();
      const entry: ContextEntry = key === undefined ? { url } : { url, key };
      const path = configPath(process.env);
      const config = addContext(readConfig(path), name, entry);
      writeConfig(path, config);
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      print(json ? contextDocument(config, name) : `added context ${name}${config.current === name ? ' (current)' : ''} in ${path}\n`, json);
    });

  contexts
    .command('use')
    .description('make context NAME the current one')
    .argument('<name>', 'context name')
    .addHelpText('after', example('flurry context use prod'))
    .action((name: string, _options: object, command: Command) => {
      const path = configPath(process.env);
      writeConfig(path, useContext(readConfig(path), name));
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      print(json ? { current: name } : `using context ${name}\n`, json);
    });

  contexts
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list the contexts; * marks the current one')
    .addHelpText('after', example('flurry context ls'))
    .action((_options: object, command: Command) => {
      const config = readConfig(configPath(process.env));
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      const names = Object.keys(config.contexts);
      if (json) return print(names.map((name) => contextDocument(config, name)), true);
      print(
        formatTable(
          [{ header: 'CURRENT' }, { header: 'NAME' }, { header: 'URL' }, { header: 'KEY' }],
          names.map((name) => [config.current === name ? '*' : '', name, config.contexts[name]!.url, maskedKey(config.contexts[name]!.key)]),
        ),
        false,
      );
    });

  contexts
    .command('get')
    .description('show context NAME (default: the current one); the key shown only by its start')
    .argument('[name]', 'context name')
    .addHelpText('after', example('flurry context get', 'flurry context get prod'))
    .action((name: string | undefined, _options: object, command: Command) => {
      const config = readConfig(configPath(process.env));
      const chosen = name ?? config.current;
      if (chosen === undefined) throw new UsageError('no current context: name one, or flurry context use NAME');
      if (!(chosen in config.contexts)) throw new ConfigFileError(noSuchContext(config, chosen));
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      const document = contextDocument(config, chosen);
      print(json ? document : formatFields([['name', chosen], ['url', document.url], ['key', maskedKey(config.contexts[chosen]!.key)], ['current', document.current ? 'yes' : 'no']]), json);
    });

  contexts
    .command('rm')
    .alias('delete')
    .description('remove context NAME (removing the current one leaves none current)')
    .argument('<name>', 'context name')
    .addHelpText('after', example('flurry context rm staging'))
    .action((name: string, _options: object, command: Command) => {
      const path = configPath(process.env);
      writeConfig(path, removeContext(readConfig(path), name));
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      print(json ? { deleted: name } : `removed context ${name}\n`, json);
    });
}

/** The --url typed on this command line: FLURRY_URL, made for one session, must not slip into a saved context. */
function givenUrl(command: Command): string {
  let root = command;
  while (root.parent) root = root.parent;
  const url = root.getOptionValueSource('url') === 'cli' ? root.opts<{ url?: string }>().url : undefined;
  if (!url) throw new UsageError('context add: --url URL is required');
  return url;
}

/** A context as printed with --json: never the key itself. */
function contextDocument(config: CliConfig, name: string): { name: string; url: string; hasKey: boolean; current: boolean } {
  const entry = config.contexts[name]!;
  return { name, url: entry.url, hasKey: entry.key !== undefined, current: config.current === name };
}

/** Enough of a key to tell keys apart, not enough to use one. */
function maskedKey(key: string | undefined): string {
  return key === undefined ? 'none' : `${key.slice(0, Math.min(8, Math.floor(key.length / 2)))}…`;
}
