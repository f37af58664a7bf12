/** `flurry service ...`, `flurry instance migrate` and `flurry host drain|activate`: services, their instances and the hosts they run on. */
import type { Command } from 'commander';
import { context, EXIT_FAILURE, nonNegativeInteger, positiveInteger, print, readInput, UsageError } from './cli-context.js';
import { drainDetails, migrationDetails, serviceDetails, serviceLine, servicesTable } from './cli-views.js';

/** `flurry service create|ls|get|scale|rm` and `flurry instance migrate`: long-lived services and their instances. */
export function addServiceCommands(program: Command): void {
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
export function addHostCommands(program: Command): void {
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
