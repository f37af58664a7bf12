#!/usr/bin/env node
/** `npm run bench -- <name> [--json] [options]`: runs one benchmark; `--json` prints one JSON object as the last line. */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<Record<string, unknown>> }>> = {
  invoke: () => import('./invoke.js'),
  fork: () => import('./fork.js'),
  workloads: () => import('./workloads.js'),
  migrate: () => import('./migrate.js'),
  burst: () => import('./burst.js'),
  soak: () => import('./soak.js'),
  checks: () => import('./checks.js'),
  plan: () => import('./plan.js'),
  route: () => import('./route.js'),
};

const [name, ...args] = process.argv.slice(2);
if (!name || !(name in benches)) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json]`);
  process.exit(2);
}
const bench = await benches[name]();
const result = await bench.run(args);
if (args.includes('--json')) console.log(JSON.stringify(result));
process.exit(0);
