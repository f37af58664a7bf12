/**
 * `npm run bench -- workloads [--json] [--clones N] [--hosts H] [--threads T]`:
 * the three real programs (quant, render, blast) as fork-join jobs on ONE
 * LocalFleet of H host processes with T guest threads each. Per workload:
 *
 *   jobMs       a job of N clones, POST /v1/jobs until its `done` event (measured)
 *   idealMs     one warm instance doing the same work (quant: handle(); render,
 *               blast: a 1-clone job's clone run time), measured in this run,
 *               divided by cores = min(N, H x T, os.availableParallelism()) (computed)
 *   coldBootMs  every clone booting cold (compile, instantiate, init) before its
 *               share: idealMs + ceil(N / cores) x coldStartMs, coldStartMs being
 *               one cold instance measured in this run (computed from a measurement)
 *   overheadPct (jobMs - idealMs) / idealMs x 100
 *   ncbiMs      blast only: NCBI blastn -task blastn -num_threads cores (measured)
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LocalFleet } from '@flurry/infra';
import { measureQuant } from './workload-quant.js';
import { measureRender, singleAndMany, timedJob, type Phases, type TimedJob } from './workload-render.js';
import { measureBlast } from './workload-blast.js';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

interface Row { effectiveCores?: number; idealAtEffectiveMs?: number; jobMs: number; idealMs: number; coldBootMs: number; overheadPct: number; singleMs: number; coldStartMs: number; ncbiMs?: number | null }

/**
 * How many cores this process actually gets right now (the machine is shared):
 * the same spin on 1 thread, then on `cores` threads at once; answers
 * cores x t1 / t(cores) (at most `cores`).
 */
async function probeCores(cores: number): Promise<number> {
  const spin = (n: number) => new Promise<number>((resolve, reject) => {
    const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
      const t = performance.now(); let x = 0; for (let i = 0; i < workerData; i++) x = (x * 1103515245 + 12345) % 2147483647;
      parentPort.postMessage(performance.now() - t + (x < 0 ? 1 : 0));`, { eval: true, workerData: n });
    w.once('message', (ms: number) => { resolve(ms); void w.terminate(); });
    w.once('error', reject);
  });
  const n = 60_000_000;
  const t1 = await spin(n);
  const tn = Math.max(...(await Promise.all(Array.from({ length: cores }, () => spin(n)))));
  return Math.min(cores, (cores * t1) / tn);
}

/** Where the fastest job's time went, from its events as this client saw them. */
function breakdown(p: Phases, cloneRunMs: number[]) {
  return {
    parentInitMs: r1(p.initMs), snapshotMs: r1(p.snapshotMs),
    untilForkedMs: r1(p.firstForkedAt), runSpanMs: r1(p.lastCloneDoneAt - p.firstForkedAt), reduceAndDoneMs: r1(p.doneAt - p.lastCloneDoneAt),
    cloneRunMs: { min: r1(Math.min(...cloneRunMs)), max: r1(Math.max(...cloneRunMs)), sum: r1(cloneRunMs.reduce((a, b) => a + b, 0)) },
  };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const hostCount = option(args, 'hosts', 3);
  const threads = option(args, 'threads', 2);
  const clones = option(args, 'clones', 2 * hostCount * threads);
  const reps = option(args, 'reps', 3);
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  const cores = Math.min(clones, hostCount * threads, availableParallelism());
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : ['quant', 'render', 'blast'];
  const started = performance.now();

  say(`workloads: ${clones} clones per job, fastest of ${reps} repetitions, over ${hostCount} hosts x ${threads} guest threads on ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}); cores the job can use: ${cores}; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  const fleet = await LocalFleet.start({
    hosts: hostCount,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads) },
    gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_MAX_BODY: String(6 * 1024 * 1024) },
  });
  const rows: Record<string, Row> = {};
  const details: Record<string, unknown> = {};
  let eff = cores;
  const probe = async () => { eff = await probeCores(cores); };
  const row = (singleMs: number, jobMs: number, coldStartMs: number): Row => {
    const idealMs = singleMs / cores;
    return {
      effectiveCores: Math.round(eff * 100) / 100, idealAtEffectiveMs: r1(singleMs / eff),
      jobMs: r1(jobMs), idealMs: r1(idealMs), coldBootMs: r1(idealMs + Math.ceil(clones / cores) * coldStartMs),
      overheadPct: r1(((jobMs - idealMs) / idealMs) * 100), singleMs: r1(singleMs), coldStartMs: r1(coldStartMs),
    };
  };
  try {
    if (only.includes('quant')) {
      await probe();
      const q = await measureQuant({ fleetUrl: fleet.url, clones, hostsUsableCores: cores });
      // More repetitions of the same single call and job (measureQuant's are the first).
      const spec = { spot: 100, strike: 100, rate: 0.05, volatility: 0.2, maturity: 1, steps: q.steps, paths: q.paths, option: 'asian-call', seed: 11 };
      const handleCall = async (): Promise<TimedJob> => {
        const t = performance.now();
        const res = await fetch(`${fleet.url}/fn/quant`, { method: 'POST', body: JSON.stringify(spec) });
        const body = Buffer.from(await res.arrayBuffer());
        if (!res.ok) throw new Error(`quant handle: ${res.status} ${body.toString()}`);
        const ms = performance.now() - t;
        return { jobMs: ms, job: { id: '', state: 'done', clonesDetail: [{ index: 0, runMs: ms }] }, output: body, phases: {} as Phases };
      };
      const more = reps > 1 ? await singleAndMany(fleet.url, reps - 1, handleCall, () => timedJob(fleet.url, { function: 'quant', clones, init: JSON.stringify(spec) })) : undefined;
      const prices = more ? [more.single, more.many].map((t) => (JSON.parse(t.output.toString()) as { price: number }).price) : [];
      const singleMs = Math.min(q.singleMs, ...(more ? [more.single.jobMs] : []));
      const jobMs = Math.min(q.jobMs, ...(more ? [more.many.jobMs] : []));
      rows.quant = row(singleMs, jobMs, q.coldBootMs ?? 0);
      details.quant = {
        size: `Asian call, ${q.paths} paths x ${q.steps} steps`, singleFrom: q.extrapolated ? 'handle(), extrapolated from a quarter of the paths' : 'handle(), all the paths',
        identical: q.identical !== false && prices.every((p) => p === q.price), price: q.price,
        singleRuns: [q.singleMs, ...(more?.singleRuns ?? [])], jobRuns: [q.jobMs, ...(more?.jobRuns ?? [])],
        ...(more ? { fastestRepeatJob: breakdown(more.many.phases, more.many.job.clonesDetail.map((c) => c.runMs ?? NaN)) } : {}),
      };
      say(`  quant done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    if (only.includes('render')) {
      await probe();
      const m = await measureRender({ fleetUrl: fleet.url, clones, reps });
      rows.render = row(m.singleMs, m.jobMs, m.coldStartMs);
      details.render = { size: `${m.scene}, ${m.width}x${m.height}, ${m.samples} samples, depth ${m.maxDepth}`, singleFrom: '1-clone job, clone run time', identical: m.identical, hosts: m.hosts, singleRuns: m.singleRuns, jobRuns: m.jobRuns, fastestJob: breakdown(m.phases, m.cloneRunMs) };
      say(`  render done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    if (only.includes('blast')) {
      await probe();
      const m = await measureBlast({ fleetUrl: fleet.url, clones, cores, reps });
      rows.blast = { ...row(m.singleMs, m.jobMs, m.coldStartMs), ncbiMs: m.ncbiMs };
      details.blast = { size: `${m.sequences} sequences (${m.bases} bp: lambda + dm3 upstream), ${m.queries} queries`, singleFrom: '1-clone job, clone run time', identical: m.identical, lines: m.lines, ncbiLines: m.ncbiLines, ncbiVersion: m.ncbiVersion, ncbiThreads: m.ncbiThreads, hosts: m.hosts, singleRuns: m.singleRuns, jobRuns: m.jobRuns, fastestJob: breakdown(m.phases, m.cloneRunMs) };
      say(`  blast done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
  } finally {
    await fleet.stop();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  say('');
  say(`${'workload'.padEnd(9)}${pad('single', 9)}${pad('ideal', 9)}${pad('job', 9)}${pad('overhead', 10)}${pad('coldStart', 11)}${pad('coldBoot', 10)}${pad('cold/job', 10)}${pad('ncbi', 9)}${pad('ncbi/job', 10)}${pad('effCores', 10)}${pad('ideal@eff', 11)}`);
  for (const [name, r] of Object.entries(rows)) {
    say(`${name.padEnd(9)}${pad(r.singleMs.toFixed(0), 9)}${pad(r.idealMs.toFixed(0), 9)}${pad(r.jobMs.toFixed(0), 9)}${pad(r.overheadPct.toFixed(1) + '%', 10)}${pad(r.coldStartMs.toFixed(0), 11)}${pad(r.coldBootMs.toFixed(0), 10)}${pad((r.coldBootMs / r.jobMs).toFixed(2), 10)}` +
      (r.ncbiMs != null ? `${pad(r.ncbiMs.toFixed(0), 9)}${pad((r.ncbiMs / r.jobMs).toFixed(2), 10)}` : ' '.repeat(19)) + `${pad(r.effectiveCores!.toFixed(2), 10)}${pad(r.idealAtEffectiveMs!.toFixed(0), 11)}`);
  }
  say(`(ms, fastest of ${reps} repetitions each) single: one warm instance, all the work (measured);`);
  say('     ideal = single / cores (computed); job: N-clone job, POST to done (measured);');
  say(`     coldStart: one cold instance, measured (fresh module copy: quant first handle() call, render/blast a tiny 1-clone job incl. job costs);`);
  say(`     coldBoot = ideal + ceil(${clones} / ${cores}) x coldStart (computed, not measured); ncbi: blastn -task blastn -num_threads ${cores} (measured)`);
  say(`     effCores: cores a CPU-bound probe got just before the workload (the machine is shared); ideal@eff = single / effCores (computed)`);
  for (const [name, d] of Object.entries(details)) say(`  ${name}: ${JSON.stringify(d)}`);
  say(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return {
    bench: 'workloads', clones, hosts: hostCount, threads, cores, cpus: availableParallelism(),
    ...Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, { ...r, ...(details[k] as object) }])),
  };
}
