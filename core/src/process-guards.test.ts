import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const guards = fileURLToPath(new URL('../dist/process-guards.js', import.meta.url));

/** Runs `body` in a fresh Node process that called serveOnUncaught first; its exit code and output. */
function run(body: string): { status: number | null; stdout: string } {
  const script = `
    import { serveOnUncaught } from ${JSON.stringify(guards)};
    const log = { error: () => {}, fatal: (o, m) => console.log('fatal: ' + m), flush: () => {} };
    serveOnUncaught(log);
    ${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout };
}

describe('serveOnUncaught', () => {
  it('an exception thrown from a callback, a rejection nobody awaited - logged, the process serves on', () => {
    const r = run(`
      setTimeout(() => { throw new Error('bug in a callback'); }, 1);
      Promise.reject(new Error('nobody awaited this'));
      setTimeout(() => { console.log('still serving'); process.exit(0); }, 100);`);
    expect(r).toEqual({ status: 0, stdout: 'still serving\n' });
  });

  it('more than 100 in a minute - the process exits 1 for a fresh start', () => {
    const r = run(`
      for (let i = 0; i < 101; i++) setTimeout(() => { throw new Error('again'); }, 1);
      setTimeout(() => { console.log('still serving'); process.exit(0); }, 500);`);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^fatal: more uncaught errors in a minute/);
  });
});
