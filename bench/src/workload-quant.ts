/**
 * The `quant` workload (Monte Carlo option pricing, functions/quant) on a
 * running fleet: one fork-join job of `clones` clones, against the ideal of the
 * same paths priced by one warm instance (handle()) spread perfectly over the
 * cores the job can use.
 *
 *   jobMs       POST /v1/jobs until its `done` event (snapshot, forks, clones,
 *               reduce, all of it), seen by this client
 *   idealMs     single warm instance's time for the same paths / hostsUsableCores
 *   coldBootMs  the first call of a freshly deployed copy of the module (compile,
 *               instantiate, init, a one-path price): what one cold instance
 *               pays before it starts working
 *
 * The single-instance time is measured directly when it fits the call limit
 * (about 6 s allowed here), else extrapolated linearly from a quarter of the
 * paths (`extrapolated: true`). When measured directly, the job's price must
 * be the very same double as the single instance's (`identical`).
 * Not wired into bench/src/run.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@flurry/infra';
import { untilDone } from './workload-render.js';

export interface QuantOptions {
  fleetUrl: string;
  clones: number;
  hostsUsableCores: number;
  /** Total paths (default 2^22) and Asian time steps (default 32). */
  paths?: number;
  steps?: number;
}

export interface QuantMeasurement {
  jobMs: number;
  idealMs: number;
  coldBootMs?: number;
  /** One warm instance, all the paths (measured or extrapolated). */
  singleMs: number;
  extrapolated: boolean;
  paths: number;
  steps: number;
  clones: number;
  price: number;
  stdError: number;
  /** The job's price equals the single instance's (null when extrapolated). */
  identical: boolean | null;
}

interface QuantResult { price: number; stdError: number; sum: number; sumSquares: number }

const SINGLE_LIMIT_MS = 6000;

export async function measureQuant(opts: QuantOptions): Promise<QuantMeasurement> {
  const url = opts.fleetUrl.replace(/\/$/, '');
  const paths = opts.paths ?? 4_194_304;
  const steps = opts.steps ?? 32;
  const spec = { spot: 100, strike: 100, rate: 0.05, volatility: 0.2, maturity: 1, steps, paths, option: 'asian-call', seed: 11 };
  const wasm = readFileSync(join(repoRoot, 'functions', 'build', 'quant.wasm'));

  // Cold: a copy under a new name, so no host has it warm.
  const coldName = `quant-cold-${Date.now().toString(36)}`;
  await put(url, coldName, wasm);
  let started = performance.now();
  await price(url, coldName, { ...spec, paths: 1 });
  const coldBootMs = performance.now() - started;
  await fetch(`${url}/v1/functions/${coldName}`, { method: 'DELETE' });

  // Warm: a few small calls first, so the timed call finds a warm instance.
  await put(url, 'quant', wasm);
  for (let i = 0; i < 4; i++) await price(url, 'quant', { ...spec, paths: 1024 });
  const quarter = Math.max(1, Math.floor(paths / 4));
  started = performance.now();
  await price(url, 'quant', { ...spec, paths: quarter });
  const quarterMs = performance.now() - started;
  let singleMs = (quarterMs * paths) / quarter;
  let single: QuantResult | null = null;
  if (singleMs < SINGLE_LIMIT_MS) {
    started = performance.now();
    // Over the call limit after all (a busy machine): keep the extrapolation.
    single = await price(url, 'quant', spec).catch(() => null);
    if (single !== null) singleMs = performance.now() - started;
  }

  // The job.
  started = performance.now();
  const res = await fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ function: 'quant', clones: opts.clones, init: Buffer.from(JSON.stringify(spec)).toString('base64') }),
  });
  if (res.status !== 202) throw new Error(`quant job: ${res.status} ${await res.text()}`);
  const { job } = (await res.json()) as { job: { id: string } };
  await untilDone(url, job.id, performance.now());
  const jobMs = performance.now() - started;
  const out = await fetch(`${url}/v1/jobs/${job.id}/result`);
  if (!out.ok) throw new Error(`quant job result: ${out.status} ${await out.text()}`);
  const result = JSON.parse(Buffer.from(await out.arrayBuffer()).toString()) as QuantResult;

  return {
    jobMs: round(jobMs),
    idealMs: round(singleMs / opts.hostsUsableCores),
    coldBootMs: round(coldBootMs),
    singleMs: round(singleMs),
    extrapolated: single === null,
    paths,
    steps,
    clones: opts.clones,
    price: result.price,
    stdError: result.stdError,
    identical: single === null ? null : single.price === result.price && single.sum === result.sum && single.sumSquares === result.sumSquares,
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

async function put(url: string, name: string, wasm: Buffer): Promise<void> {
  const res = await fetch(`${url}/v1/functions/${name}`, { method: 'PUT', body: new Uint8Array(wasm), headers: { 'content-type': 'application/wasm' } });
  if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
}

async function price(url: string, name: string, spec: object): Promise<QuantResult> {
  const res = await fetch(`${url}/fn/${name}`, { method: 'POST', body: JSON.stringify(spec) });
  if (!res.ok) throw new Error(`${name}: ${res.status} ${await res.text()}`);
  return (await res.json()) as QuantResult;
}

