import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { endingWithParent } from './parent-death.js';

const hasSetpriv = existsSync('/usr/bin/setpriv');
if (!hasSetpriv) console.log('[parent-death] skipped: no /usr/bin/setpriv (util-linux) on this machine');

/** Running (a zombie left for its new parent to reap counts as ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Starts a parent process that starts `argv` and prints its pid; returns both. */
async function parentOf(argv: string[]): Promise<{ parent: ReturnType<typeof spawn>; pid: number }> {
  const script = `const c = require('node:child_process').spawn(${JSON.stringify(argv[0])}, ${JSON.stringify(argv.slice(1))}, { stdio: 'ignore' });
    c.on('spawn', () => console.log(c.pid)); setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: parent.stdout! }), 'line')) as [string];
  return { parent, pid: Number(line) };
}

/** Whether `pid` ends within `ms` (polled). */
async function endsWithin(pid: number, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) if (!running(pid)) return true;
  return !running(pid);
}

describe.skipIf(!hasSetpriv)('endingWithParent', () => {
  it('a command started through it ends when the process that started it is SIGKILLed', async () => {
    const { parent, pid } = await parentOf(endingWithParent(['sleep', '300']));
    expect(running(pid)).toBe(true);
    parent.kill('SIGKILL');
    await once(parent, 'exit');
    expect(await endsWithin(pid, 5000)).toBe(true);
  });

  it('without it the command outlives its parent (what it is for)', async () => {
    const { parent, pid } = await parentOf(['sleep', '300']);
    try {
      parent.kill('SIGKILL');
      await once(parent, 'exit');
      expect(await endsWithin(pid, 300)).toBe(false);
    } finally {
      if (running(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
