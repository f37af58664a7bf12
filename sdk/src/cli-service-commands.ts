/** `flurry service ...` and `flurry instance ls|get|migrate`: long-lived services and their instances. */
import type { Command } from 'commander';
import { context, example, nonNegativeInteger, positiveInteger, print, readInput, UsageError } from './cli-context.js';
import { instancesTable, migrationDetails, serviceDetails, serviceLine, servicesTable } from './cli-views.js';
import { FlurryApiError } from './errors.js';

/** The `service` group (also `services`; `flurry services` alone lists them) and the `instance` group (also `instances`). */
export function addServiceCommands(program: Command): void {
  const service = program
    .command('service')
    .alias('services')
    .description('run long-lived services: persistent instances of a function, scaled by the gateway')
    .addHelpText('after', example('flurry service create chat --function room --min 2', 'flurry services'));

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
    .addHelpText('after', example('flurry service create chat --function room --min 2 --max 8', 'flurry service create chat --function room --init-data room-init.json'))
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
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list services')
    .addHelpText('after', example('flurry service ls', 'flurry services --json'))
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const services = await flurry.services.list();
      print(json ? services : servicesTable(services, Date.now()), json);
    });

  service
    .command('get')
    .description('show service NAME and a row per instance')
    .argument('<name>', 'service name')
    .addHelpText('after', example('flurry service get chat'))
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
    .addHelpText('after', example('flurry service scale chat --min 1 --max 16'))
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
    .alias('delete')
    .description('delete service NAME and destroy its instances')
    .argument('<name>', 'service name')
    .addHelpText('after', example('flurry service rm chat'))
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.services.delete(name);
      print(json ? { deleted: name } : `deleted ${name}\n`, json);
    });

  const instance = program
    .command('instance')
    .alias('instances')
    .description("list services' instances; move one to another host")
    .addHelpText('after', example('flurry instances', 'flurry instance migrate inst_mi7x2kq1a1b2c3d4e5f6 --to host-2'));

  instance
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list the instances of every service, a row each')
    .addHelpText('after', example('flurry instance ls'))
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const services = await flurry.services.list();
      print(json ? services.flatMap((svc) => svc.instances.map((i) => ({ service: svc.name, ...i }))) : instancesTable(services, Date.now()), json);
    });

  instance
    .command('get')
    .description('show instance ID: its service, host, requests in flight and any migration under way')
    .argument('<id>', 'instance id')
    .addHelpText('after', example('flurry instance get inst_mi7x2kq1a1b2c3d4e5f6'))
    .action(async (id: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      // The API has instances inside their service's record only.
      const svc = (await flurry.services.list()).find((s) => s.instances.some((i) => i.id === id));
      if (svc === undefined) throw new FlurryApiError({ status: 404, code: 'not_found', message: `no instance ${id}` });
      print(json ? { service: svc.name, ...svc.instances.find((i) => i.id === id) } : instancesTable([{ ...svc, instances: svc.instances.filter((i) => i.id === id) }], Date.now()), json);
    });

  instance
    .command('migrate')
    .description('live-migrate instance ID (memory and globals) to another host; prints the report')
    .argument('<id>', 'instance id (flurry service get NAME lists them)')
    .option('--to <host>', 'target host (default: the live, non-draining host with most free slots)')
    .option('--max-rounds <n>', 'pre-copy rounds at most (default 30); 0: stop-and-copy only', nonNegativeInteger)
    .addHelpText('after', example('flurry instance migrate inst_mi7x2kq1a1b2c3d4e5f6', 'flurry instance migrate inst_mi7x2kq1a1b2c3d4e5f6 --to host-2 --max-rounds 0'))
    .action(async (id: string, options: { to?: string; maxRounds?: number }, command: Command) => {
      const { flurry, json } = context(command);
      const report = await flurry.services.migrate(id, { target: options.to, maxRounds: options.maxRounds });
      print(json ? report : migrationDetails(id, report), json);
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
