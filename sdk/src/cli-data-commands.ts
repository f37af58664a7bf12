/** `flurry data ...`: data uploaded once and used by jobs and services as their init input. */
import type { Command } from 'commander';
import { context, example, print, readInput } from './cli-context.js';
import { dataTable } from './cli-views.js';
import { formatBytes } from './human-units.js';

/** `flurry data put|ls|get|rm`: data uploaded once and used by jobs as their init input (`--init-data`). */
export function addDataCommands(program: Command): void {
  const data = program
    .command('data')
    .description('upload data that jobs use as their init input (--init-data)')
    .addHelpText('after', example('flurry data put db.fasta ./db.fasta', 'flurry job run blast --clones 8 --init-data db.fasta --input queries.fasta'));

  data
    .command('put')
    .description('upload FILE as data NAME (replaces it)')
    .argument('<name>', 'data name')
    .argument('<file>', 'the bytes (- for stdin)')
    .addHelpText('after', example('flurry data put db.fasta ./db.fasta', 'gunzip -c db.fa.gz | flurry data put db.fasta -'))
    .action(async (name: string, file: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.data.put(name, await readInput(file));
      print(json ? record : `${record.name} ${formatBytes(record.bytes)} ${record.digest}\n`, json);
    });

  data
    .command('ls', { isDefault: true })
    .alias('list')
    .description('list uploaded data')
    .addHelpText('after', example('flurry data ls'))
    .action(async (_options: object, command: Command) => {
      const { flurry, json } = context(command);
      const records = await flurry.data.list();
      print(json ? records : dataTable(records, Date.now()), json);
    });

  data
    .command('get')
    .description("show data NAME's size, digest and age")
    .argument('<name>', 'data name')
    .addHelpText('after', example('flurry data get db.fasta'))
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      const record = await flurry.data.get(name);
      print(json ? record : dataTable([record], Date.now()), json);
    });

  data
    .command('rm')
    .alias('delete')
    .description('delete data NAME')
    .argument('<name>', 'data name')
    .addHelpText('after', example('flurry data rm db.fasta'))
    .action(async (name: string, _options: object, command: Command) => {
      const { flurry, json } = context(command);
      await flurry.data.delete(name);
      print(json ? { deleted: name } : `deleted ${name}\n`, json);
    });
}
