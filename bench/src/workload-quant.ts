/**
 * The `quant` workload (Monte Carlo option pricing, functions/quant) for the
 * workloads bench: an Asian call, `paths` paths of 32 steps (default 2^23).
 * Results are the same when price, sum and sum of squares are the same
 * doubles (the output also names the clone count, which differs).
 *
 * Tasks: 8 per clone, equal blocks of paths (every path costs the same):
 * enough that the clones finish within about one task of each other, few
 * enough that a task (tens of ms) costs nothing next to its paths.
 */
import type { Workload } from './workload-jobs.js';

export interface QuantSize { paths: number; steps: number }

export function quantWorkload(fn: string, size: QuantSize): Workload & { describe: string } {
  const spec = { spot: 100, strike: 100, rate: 0.05, volatility: 0.2, maturity: 1, steps: size.steps, paths: size.paths, option: 'asian-call', seed: 11 };
  const key = (b: Buffer) => {
    const r = JSON.parse(b.toString()) as { price: number; sum: number; sumSquares: number };
    return [r.price, r.sum, r.sumSquares];
  };
  return {
    function: fn,
    init: { init: JSON.stringify(spec) },
    tasks: (clones) => 8 * clones,
    same: (a, b) => key(a).every((v, i) => v === key(b)[i]),
    describe: `Asian call, ${size.paths} paths x ${size.steps} steps`,
  };
}

export function quantPrice(output: Buffer): { price: number; stdError: number } {
  const r = JSON.parse(output.toString()) as { price: number; stdError: number };
  return { price: r.price, stdError: r.stdError };
}
