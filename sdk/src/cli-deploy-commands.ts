/**
 * `flurry deploy NAME FILE` (one module) and `flurry deploy -f flurry.yaml`
 * (a manifest: docs/manifests.md). A manifest is read, built, hashed and
 * planned before anything is sent; a bad one changes nothing. Then each
 * change is applied in order and printed as it is done.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { context, example, print, readInput, UsageError } from './cli-context.js';
import { deployedLine } from './cli-views.js';
import type { Flurry } from './client.js';
import { ManifestError, parseManifest, planChanges, type Change, type DesiredFunction, type Manifest } from './manifest.js';

interface DeployOptions {
  file?: string;
  dryRun?: boolean;
}

/** The whole `deploy` command: NAME FILE, or -f MANIFEST [--dry-run]. */
export function addDeployCommand(program: Command): void {
  program
    .command('deploy')
    .description('upload a wasm module as function NAME (creates or replaces it), or apply a flurry.yaml manifest with -f')
    .argument('[name]', 'function name')
    .argument('[file]', 'wasm module (- for stdin)')
    .option('-f, --file <manifest>', 'apply a manifest: its functions (modules, limits) and services, changing only what differs')
    .option('--dry-run', 'with -f: print what would change, change nothing')
    .addHelpText('after', example('flurry deploy echo functions/build/echo.wasm', 'flurry deploy -f functions/flurry.yaml --dry-run', 'flurry deploy -f functions/flurry.yaml'))
    .action(async (name: string | undefined, file: string | undefined, options: DeployOptions, command: Command) => {
      const { flurry, json } = context(command);
      if (options.file !== undefined) {
        if (name !== undefined) throw new UsageError('give NAME FILE or -f MANIFEST, not both');
        return applyManifest(flurry, options.file, options.dryRun === true, json);
      }
      if (name === undefined || file === undefined) throw new UsageError('give NAME FILE (a module), or -f flurry.yaml (a manifest)');
      if (options.dryRun) throw new UsageError('--dry-run goes with -f MANIFEST');
      const fn = await flurry.functions.deploy(name, await readInput(file));
      print(json ? fn : deployedLine(fn), json);
    });
}

async function applyManifest(flurry: Flurry, path: string, dryRun: boolean, json: boolean): Promise<void> {
  let plan: Change[];
  let modules: Map<string, Uint8Array>;
  try {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ManifestError(`cannot read ${path}: ${err.code ?? err.message}`);
    });
    const manifest = parseManifest(text, path);
    modules = await buildAndRead(manifest, dirname(path), path);
    const desired: DesiredFunction[] = Object.entries(manifest.functions).map(([name, f]) => ({
      name, digest: createHash('sha256').update(modules.get(name)!).digest('hex'), limits: f.limits ?? {},
    }));
    const services = Object.keys(manifest.services).length > 0 ? await flurry.services.list() : [];
    plan = planChanges(manifest, desired, { functions: await flurry.functions.list(), services }, path);
  } catch (err) {
    throw err instanceof ManifestError ? new UsageError(err.message) : err;
  }
  const report = plan.map((change) => ({ kind: change.kind, name: change.name, action: change.action, changes: change.changes }));
  if (dryRun && !json) process.stderr.write(`plan for ${path} (dry run: nothing is changed)\n`);
  for (const change of plan) {
    if (!dryRun) await apply(flurry, change, modules);
    if (!json) process.stdout.write(changeLine(change, dryRun));
  }
  if (json) print({ manifest: path, dryRun, changes: report }, true);
  else process.stdout.write(summary(plan, dryRun));
}

/** Runs each distinct build command once, in the manifest's directory, then reads every module. */
async function buildAndRead(manifest: Manifest, dir: string, source: string): Promise<Map<string, Uint8Array>> {
  const built = new Set<string>();
  for (const [name, f] of Object.entries(manifest.functions)) {
    if (f.build === undefined || built.has(f.build)) continue;
    built.add(f.build);
    // Its output goes to stderr: stdout is the report (or the one JSON document).
    const run = spawnSync(f.build, { shell: true, cwd: dir, stdio: ['ignore', process.stderr, process.stderr] });
    if (run.error || run.status !== 0) {
      const why = run.error ? run.error.message : run.signal ? `was killed by ${run.signal}` : `exited with code ${run.status}`;
      throw new ManifestError(`${source}: functions.${name}.build: "${f.build}" ${why}; nothing was applied`);
    }
  }
  const modules = new Map<string, Uint8Array>();
  for (const [name, f] of Object.entries(manifest.functions)) {
    const file = resolve(dir, f.module);
    try {
      modules.set(name, new Uint8Array(await readFile(file)));
    } catch (err) {
      throw new ManifestError(`${source}: functions.${name}.module: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; nothing was applied`);
    }
  }
  return modules;
}

async function apply(flurry: Flurry, change: Change, modules: Map<string, Uint8Array>): Promise<void> {
  if (change.action === 'unchanged') return;
  if (change.kind === 'function') {
    const limits = change.limits;
    if (limits && change.limitsFirst) await flurry.functions.setLimits(change.name, limits);
    if (change.upload) await flurry.functions.deploy(change.name, modules.get(change.name)!);
    if (limits && !change.limitsFirst) await flurry.functions.setLimits(change.name, limits);
    return;
  }
  const { function: fn, min, max, targetConcurrency, init, initData } = change.spec;
  if (change.action === 'create') await flurry.services.create({ name: change.name, function: fn, min, max, targetConcurrency, init, initData });
  else await flurry.services.update(change.name, { min, max, targetConcurrency });
}

const DONE: Record<Change['action'], string> = { create: 'created', update: 'updated', unchanged: 'unchanged' };
const PLANNED: Record<Change['action'], string> = { create: 'would create', update: 'would update', unchanged: 'unchanged' };

function changeLine(change: Change, dryRun: boolean): string {
  const what = `${change.kind} ${change.name}`.padEnd(28);
  const action = (dryRun ? PLANNED : DONE)[change.action].padEnd(13);
  return `${what} ${action}${change.changes.length > 0 ? ` ${change.changes.join(', ')}` : ''}`.trimEnd() + '\n';
}

function summary(plan: Change[], dryRun: boolean): string {
  const count = (action: Change['action']) => plan.filter((c) => c.action === action).length;
  const [created, updated, unchanged] = [count('create'), count('update'), count('unchanged')];
  if (created + updated === 0) return `nothing changed (${unchanged} unchanged)\n`;
  if (dryRun) return `would change: ${created} to create, ${updated} to update, ${unchanged} unchanged\n`;
  return `changed: ${created} created, ${updated} updated, ${unchanged} unchanged\n`;
}
