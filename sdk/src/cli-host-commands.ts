/** `flurry host ls|get|drain|activate`: the worker hosts, and taking one out of service and back. */
import type { Command } from 'commander';
import { context, EXIT_FAILURE, example, print } from './cli-context.js';
import { drainDetails, hostDetails, hostsTable } from './cli-views.js';
import { FlurryApiError } from './errors.js';

/** The `host` group (also `hosts`; `flurry hosts` alone lists them). */
export function addHostCommands(program: Command): void {
  const host = program
    .command('host')
    .alias('hosts')
    .description('list the worker hosts; take one out of service and back')
    .addHelpText('after', example('flurry hosts', 'flurry host drain host-1'));

  host
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list the worker hosts, their load and state (drained hosts marked releasable)')
    .addHelpText('after', example('flurry host ls', 'flurry hosts --json'))
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const hosts = await flurry.hosts.list();
      print(json ? hosts : hostsTable(hosts, Date.now()), json);
    });

  host
    .command('get')
    .description('show host ID: state, slots, memory budget, what it holds')
    .argument('<id>', 'host id (flurry hosts lists them)')
    .addHelpText('after', example('flurry host get host-1'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      // The API lists hosts only; one is picked here, and a missing one reads as the API's not_found.
      const found = (await flurry.hosts.list()).find((h) => h.id === id);
      if (found === undefined) throw new FlurryApiError({ status: 404, code: 'not_found', message: `${id} is not a live host` });
      print(json ? found : hostDetails(found, Date.now()), json);
    });

  host
    .command('drain')
    .description('drain host ID: nothing new goes there and its service instances migrate away; exits 1 if one could not be moved')
    .argument('<id>', 'host id')
    .addHelpText('after', example('flurry host drain host-1'))
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
    .addHelpText('after', example('flurry host activate host-1'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.hosts.activate(id);
      print(json ? { activated: id } : `activated ${id}\n`, json);
    });
}
