/**
 * `npm run bench -- workloads --single-only [--before FILE.wasm] [--reps R] [--db-mbp M] [--queries Q] [--random Q] [--json]`:
 * the blast search itself, per core, against NCBI, in one run (no fan-out):
 *
 *   singleMs      one warm instance doing all the work: a 1-clone job's run
 *                 (clonesDetail[0].runMs), fastest of R, after a first job
 *                 booted the parent                                      (measured)
 *   ncbi1Ms       blastn -task blastn -num_threads 1 on the same FASTA   (measured)
 *   ncbiMs        the same with -num_threads cores                        (measured)
 *   perCoreRatio  singleMs / ncbi1Ms: below 1, one core of the guest searches faster than one of blastn
 *   idealVsNcbi   (singleMs / cores) / ncbiMs: the best a job on `cores` cores can do against blastn
 *   beforeSingleMs, speedup   with --before: the same single instance of another build of the guest
 *                 (e.g. main's), its reps interleaved with this build's; speedup = before / after
 *   identical     every result of both builds is the same bytes
 *
 * One host with one guest thread: a single instance uses one core, the rest
 * of the machine is left to blastn's runs, which go one at a time after it.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { ensureNcbiBlast, LocalFleet, runNcbiBlastn } from '@flurry/infra';
import { option } from './options.js';
import { deployWasm, guestWasm, tenths, timedJob, type JobBody } from './workload-jobs.js';
import { blastWorkload } from './workload-blast.js';

export async function runBlastSingle(args: string[]): Promise<Record<string, unknown>> {
  const reps = option(args, 'reps', 2, { positive: true });
  const dbMbp = option(args, 'db-mbp', 30, { positive: true });
  const queries = option(args, 'queries', 300, { positive: true });
  const random = option(args, 'random', 20);
  const beforePath = args.includes('--before') ? args[args.indexOf('--before') + 1] : undefined;
  if (args.includes('--before') && !beforePath?.endsWith('.wasm')) throw new Error('--before needs the path of a blast .wasm build');
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  const cores = availableParallelism();
  const ncbi = ensureNcbiBlast();
  if (!ncbi.ok) throw new Error(`blast --single-only needs NCBI BLAST+: ${ncbi.reason}`);
  const run = Date.now().toString(36);
  say(`workloads --single-only: blast, one warm instance x ${reps} against NCBI ${ncbi.value} (1 and ${cores} threads)${beforePath ? `, before: ${beforePath}` : ''}; ` +
    `load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} (a shared machine: figures indicative)`);
  const fleet = await LocalFleet.start({
    hosts: 1,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: '1', FLURRY_INIT_TIMEOUT_MS: '600000' },
    gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_MAX_BODY: String(6 * 1024 * 1024), FLURRY_PLACE_TIMEOUT_MS: '610000' },
  });
  const runs: Record<string, number[]> = {};
  let first: Buffer | undefined;
  let identical = true;
  let w: Awaited<ReturnType<typeof blastWorkload>>;
  try {
    w = await blastWorkload(fleet.url, `blast-${run}`, { dbMbp, queries, random });
    const builds = [{ name: 'after', fn: w.function, wasm: guestWasm('blast') }];
    if (beforePath) builds.push({ name: 'before', fn: `blast-before-${run}`, wasm: readFileSync(beforePath) });
    const body = (fn: string): JobBody => ({ function: fn, clones: 1, ...w.init, input: w.input! });
    for (const b of builds) {
      await deployWasm(fleet.url, b.fn, b.wasm);
      const boot = await timedJob(fleet.url, body(b.fn)); // boots the parent: not timed
      first ??= boot.output;
      identical &&= w.same(first, boot.output);
      runs[b.name] = [];
    }
    for (let i = 0; i < reps; i++) {
      for (const b of builds) {
        const one = await timedJob(fleet.url, body(b.fn));
        const ms = one.job.clonesDetail[0]?.runMs ?? one.jobMs;
        runs[b.name]!.push(tenths(ms));
        identical &&= w.same(first!, one.output);
        say(`  ${b.name}: single instance ${ms.toFixed(0)} ms`);
      }
    }
  } finally {
    await fleet.stop();
  }
  const n1 = runNcbiBlastn(w.dbFasta, w.queryFasta, 1);
  say(`  ncbi: -num_threads 1 ${n1.ms.toFixed(0)} ms`);
  const nc = runNcbiBlastn(w.dbFasta, w.queryFasta, cores);
  say(`  ncbi: -num_threads ${cores} ${nc.ms.toFixed(0)} ms`);
  const singleMs = Math.min(...runs.after!);
  const beforeSingleMs = beforePath ? Math.min(...runs.before!) : undefined;
  const ratio = (x: number) => Math.round(x * 1000) / 1000;
  const result = {
    bench: 'workloads', mode: 'single-only', cores, reps, loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    options: { dbMbp, queries, random }, size: w.describe,
    singleMs, singleRuns: runs.after,
    ...(beforeSingleMs !== undefined ? { beforeSingleMs, beforeSingleRuns: runs.before, speedup: ratio(beforeSingleMs / singleMs) } : {}),
    ncbi1Ms: tenths(n1.ms), ncbiMs: tenths(nc.ms), ncbiVersion: ncbi.value,
    perCoreRatio: ratio(singleMs / n1.ms), idealVsNcbi: ratio(singleMs / cores / nc.ms),
    identical, lines: first!.toString('utf8').split('\n').filter((l) => l.trim()).length,
    ncbiLines: nc.tabular.split('\n').filter((l) => l.trim()).length,
  };
  say('');
  if (beforeSingleMs !== undefined) say(`before ${beforeSingleMs.toFixed(0)} ms, after ${singleMs.toFixed(0)} ms: ${result.speedup}x faster (same run, interleaved)`);
  say(`single ${singleMs.toFixed(0)} ms vs blastn -num_threads 1 ${n1.ms.toFixed(0)} ms: ${result.perCoreRatio}x; ideal on ${cores} cores ${(singleMs / cores).toFixed(0)} ms ` +
    `vs blastn -num_threads ${cores} ${nc.ms.toFixed(0)} ms: ${result.idealVsNcbi}x; identical ${identical}`);
  return result;
}
