/** Benchmarks' command-line options: `--name value` numbers, checked (a bad value stops the run, naming the option). */

/** The number after `--name`, or `fallback` when it is not given; `positive` refuses 0 as well as negatives. */
export function option(args: string[], name: string, fallback: number, opts: { positive?: boolean } = {}): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0 || (opts.positive && v === 0)) throw new Error(`--${name} needs a ${opts.positive ? 'positive' : 'non-negative'} number, got ${args[i + 1]}`);
  return v;
}
