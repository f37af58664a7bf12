// The command tree as the user meets it: every command's help ends with an example, and the
// verbs are the same for every resource.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { subcommand } from './cli-context.js';
import { buildProgram } from './cli-program.js';

/** Every command below `command`, with its path from the root (`flurry job run`). */
function allCommands(command: Command, path = command.name()): { path: string; command: Command }[] {
  return [{ path, command }, ...command.commands.flatMap((sub) => allCommands(sub, `${path} ${sub.name()}`))];
}

function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk), writeErr: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

describe('cli program', () => {
  const program = buildProgram();
  const commands = allCommands(program);

  it('cli program - every command, the root and each group included, shows an example that calls flurry', () => {
    // A walk that found nothing would pass: the groups and their verbs are there.
    expect(commands.length).toBeGreaterThan(30);
    const withoutExample = commands.filter(({ command }) => !/\nExamples?:\n {2}\$ flurry /.test(helpOf(command))).map(({ path }) => path);
    expect(withoutExample).toEqual([]);
  });

  it('cli program - each resource lists with ls, shows with get and, where it can be deleted, removes with rm', () => {
    const verbs = (group: string) => subcommand(program, group).commands.map((c) => c.name());
    for (const group of ['function', 'job', 'data', 'service', 'instance', 'host', 'context']) {
      expect(verbs(group), group).toEqual(expect.arrayContaining(['ls', 'get']));
    }
    for (const group of ['function', 'data', 'service', 'context']) expect(verbs(group), group).toContain('rm');
    // A job is cancelled, not deleted (its record stays): rm is cancel's alias, as DELETE /v1/jobs/:id cancels.
    expect(subcommand(subcommand(program, 'job'), 'cancel').aliases()).toContain('rm');
  });

  it("cli program - today's names stay as aliases: functions, hosts, job status, job list", () => {
    expect(subcommand(program, 'function').aliases()).toContain('functions');
    expect(subcommand(program, 'host').aliases()).toContain('hosts');
    const job = subcommand(program, 'job');
    expect(subcommand(job, 'get').aliases()).toContain('status');
    expect(subcommand(job, 'ls').aliases()).toContain('list');
    // `job logs` was the events: it is `job events` now, and `job logs` is left for the guests' log lines.
    expect(job.commands.map((c) => c.name())).toContain('events');
  });
});
