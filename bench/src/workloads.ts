/**
 * `npm run bench -- workloads [options]`: the three real programs (quant,
 * render, blast) as fork-join jobs on ONE LocalFleet of H host processes with
 * T guest threads each; per workload (see workload-jobs.ts):
 *
 *   firstJobMs  the first N-clone job: boots the parent                (measured)
 *   jobMs       the same job again: from the warm parent where the
 *               platform keeps parents between jobs; with `tasks`        (measured)
 *   staticJobMs the same job split statically (no tasks), same run    (measured)
 *   singleMs    one warm instance doing all the work (1-clone job's run) (measured)
 *   idealMs     singleMs / cores, cores = min(N, H x T, CPUs)           (computed)
 *   coldBootMs  the job with boot: "cold", every clone runs init itself (measured)
 *   overheadPct (jobMs - idealMs) / idealMs x 100, staticOverheadPct the same
 *               for staticJobMs; staticVsTasks = staticJobMs / jobMs
 *   ncbiMs      blast only: NCBI blastn -task blastn -num_threads cores (measured)
 *
 * Options: --json, --quiet, --clones N (2 x H x T), --hosts H (3),
 * --threads T (2), --reps R (2), --only quant,render,blast,
 * --paths P (quant, 2^23), --render WxH (320x240), --samples S (48),
 * --db-mbp M (blast database, 30), --queries Q (blast mutated queries, 300),
 * --random Q (blast random queries, 20), --no-tasks (every job splits
 * statically, as before tasks: no task jobs, no baseline beside them),
 * --tasks T (every workload's task count, instead of its own choice).
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LocalFleet } from '@flurry/infra';
import { deployWasm, guestWasm, measureForkJoin, type ForkJoinMeasurement, type Workload } from './workload-jobs.js';
import { quantPrice, quantWorkload } from './workload-quant.js';
import { renderWorkload } from './workload-render.js';
import { blastWorkload, ncbiBaseline } from './workload-blast.js';
import { option } from './options.js';
import { runBlastSingle } from './blast-single.js';
import { runFloor } from './workload-floor.js';
import { readBroker } from './broker-traffic.js';
import { cpuBetween, fleetProcesses, readCpu } from './fleet-cpu.js';

/**
 * How many cores this process actually gets right now (the machine may be
 * shared): the same spin on 1 thread, then on `cores` threads at once;
 * answers cores x t1 / t(cores) (at most `cores`).
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

export async function run(args: string[]): Promise<Record<string, unknown>> {
  // --single-only: blast's single instance against NCBI per core, nothing else.
  if (args.includes('--single-only')) return runBlastSingle(args);
  // --floor: the same work with no fleet at all (one process, its guest threads side by side).
  if (args.includes('--floor')) return runFloor(args);
  const hostCount = option(args, 'hosts', 3, { positive: true });
  const threads = option(args, 'threads', 2, { positive: true });
  const clones = option(args, 'clones', 2 * hostCount * threads, { positive: true });
  const reps = option(args, 'reps', 2, { positive: true });
  const paths = option(args, 'paths', 2 ** 23, { positive: true });
  const [width, height] = (args.includes('--render') ? args[args.indexOf('--render') + 1]! : '320x240').split('x').map(Number) as [number, number];
  if (!(width > 0 && height > 0)) throw new Error('--render needs WIDTHxHEIGHT, e.g. 320x240');
  const samples = option(args, 'samples', 48, { positive: true });
  const dbMbp = option(args, 'db-mbp', 30, { positive: true });
  const queries = option(args, 'queries', 300, { positive: true });
  const random = args.includes('--random') ? Number(args[args.indexOf('--random') + 1]) : 20;
  const quiet = args.includes('--quiet');
  const useTasks = !args.includes('--no-tasks');
  const fixedTasks = args.includes('--tasks') ? option(args, 'tasks', 1, { positive: true }) : undefined;
  const say = (s: string) => { if (!quiet) console.log(s); };
  const cores = Math.min(clones, hostCount * threads, availableParallelism());
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : ['quant', 'render', 'blast'];
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
  // Fresh function names: no parent of an earlier run can be kept for them.
  const run = Date.now().toString(36);

  say(`workloads: ${clones} clones per job, ${reps} repetition(s) of the warm job and the single instance, over ${hostCount} hosts x ${threads} guest threads ` +
    `on ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); cores the job can use: ${cores}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const fleet = await LocalFleet.start({
    hosts: hostCount,
    // A cold-boot job runs init in every clone at once (indexing 30 Mbp six at a
    // time on two cores): give init, and the gateway's wait for a parent, 10 minutes.
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads), FLURRY_INIT_TIMEOUT_MS: '600000' },
    // The most the gateway allows: room for a small database inline when it has no data API.
    gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_MAX_BODY: String(6 * 1024 * 1024), FLURRY_PLACE_TIMEOUT_MS: '610000' },
    // Messages and bytes across the broker per job, from its own counters.
    natsMonitor: true,
  });
  const monitorUrl = fleet.natsMonitorUrl;
  const readBrokerNow = monitorUrl ? () => readBroker(monitorUrl) : undefined;
  const processes = fleetProcesses(fleet);
  // What the fleet itself takes of the cores with no job running (a job pays it, a single instance on its one core does not).
  const idleStart = readCpu(processes);
  await new Promise((r) => setTimeout(r, 5000));
  const idleFleet = cpuBetween(idleStart, readCpu(processes));
  say(`  the fleet, idle, CPU ms in ${idleFleet.wallMs} ms: ${Object.entries(idleFleet.cpuMs).map(([k, v]) => `${k} ${v}`).join(', ')}; no process ${idleFleet.idleMs}`);
  const results: Record<string, Record<string, unknown>> = { idleFleet: idleFleet as unknown as Record<string, unknown> };
  const rows: Record<string, ForkJoinMeasurement & { effectiveCores: number; ncbiMs?: number }> = {};
  const measure = async (name: string, wasmName: string, w: Workload, extra: (m: ForkJoinMeasurement) => Record<string, unknown>) => {
    const effectiveCores = Math.round((await probeCores(cores)) * 100) / 100;
    await deployWasm(fleet.url, w.function, guestWasm(wasmName));
    const m = await measureForkJoin(fixedTasks === undefined ? w : { ...w, tasks: () => fixedTasks }, { url: fleet.url, clones, cores, reps, useTasks, say, readCpu: () => readCpu(processes), readBroker: readBrokerNow });
    const { output: _output, ...figures } = m;
    const more = extra(m);
    rows[name] = { ...m, effectiveCores, ...(typeof more.ncbiMs === 'number' ? { ncbiMs: more.ncbiMs } : {}) };
    results[name] = { ...figures, effectiveCores, ...more };
    const cpu = m.job.cpu;
    if (cpu) say(`  ${name}'s job: CPU ms in its ${cpu.wallMs} ms: ${Object.entries(cpu.cpuMs).map(([k, v]) => `${k} ${v}`).join(', ')}; no process ${cpu.idleMs}`);
    const b = m.job.broker;
    if (b) say(`  ${name}'s job across the broker: ${b.inMsgs} messages in, ${b.outMsgs} out; ${(b.inBytes / 1e6).toFixed(2)} MB in, ${(b.outBytes / 1e6).toFixed(2)} MB out`);
    say(`  ${name} done (${elapsed()})`);
  };
  try {
    if (only.includes('quant')) {
      const w = quantWorkload(`quant-${run}`, { paths, steps: 32 });
      await measure('quant', 'quant', w, (m) => ({ size: w.describe, ...quantPrice(m.output) }));
    }
    if (only.includes('render')) {
      const w = renderWorkload(`render-${run}`, { width, height, samples });
      await measure('render', 'render', w, () => ({ size: w.describe }));
    }
    if (only.includes('blast')) {
      const w = await blastWorkload(fleet.url, `blast-${run}`, { dbMbp, queries, random });
      if (w.database.via === 'init') say(`  ${w.database.reason}`);
      await measure('blast', 'blast', w, (m) => ({
        size: w.describe, database: w.database, lines: m.output.toString('utf8').split('\n').filter((l) => l.trim()).length,
        ...ncbiBaseline(w, cores),
      }));
    }
  } finally {
    await fleet.stop();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  const ms = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(0));
  say('');
  const pctOf = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1) + '%');
  say(`${'workload'.padEnd(9)}${pad('tasks', 6)}${pad('single', 9)}${pad('ideal', 9)}${pad('firstJob', 10)}${pad('job', 9)}${pad('overhead', 10)}` +
    `${pad('static', 9)}${pad('overhead', 10)}${pad('static/job', 11)}${pad('coldBoot', 10)}${pad('cold/job', 10)}${pad('ncbi', 9)}${pad('ncbi/job', 10)}${pad('effCores', 10)}`);
  for (const [name, r] of Object.entries(rows)) {
    say(`${name.padEnd(9)}${pad(r.tasks ?? '—', 6)}${pad(ms(r.singleMs), 9)}${pad(ms(r.idealMs), 9)}${pad(ms(r.firstJobMs), 10)}${pad(ms(r.jobMs), 9)}${pad(pctOf(r.overheadPct), 10)}` +
      `${pad(ms(r.staticJobMs), 9)}${pad(pctOf(r.staticOverheadPct), 10)}${pad(r.staticVsTasks?.toFixed(2) ?? '—', 11)}` +
      `${pad(ms(r.coldBootMs) + (r.coldBootMeasured ? '' : '*'), 10)}${pad((r.coldBootMs / r.jobMs).toFixed(2), 10)}` +
      `${pad(ms(r.ncbiMs), 9)}${pad(r.ncbiMs === undefined ? '—' : (r.ncbiMs / r.jobMs).toFixed(2), 10)}${pad(r.effectiveCores.toFixed(2), 10)}`);
  }
  say(`(ms; job and single: fastest of ${reps}) single: one warm instance doing all the work, a 1-clone job's run (measured); ideal = single / ${cores} cores (computed);`);
  say(`     firstJob: the first ${clones}-clone job, parent booted; job: the same job again (warm parent where parents are kept); both POST to done (measured);`);
  say(`     tasks: the work units those jobs declared (— = static split${useTasks ? ', the gateway refused tasks' : ', --no-tasks'}); static: the same job split statically, in the same repetitions (the baseline; overhead against the same ideal);`);
  say(`     coldBoot: the job with boot "cold", every clone runs init (measured; * = computed, the gateway refused it); ncbi: blastn -task blastn -num_threads ${cores} (measured);`);
  say(`     effCores: cores a CPU-bound probe got just before the workload (the machine may be shared)`);
  for (const [name, d] of Object.entries(results)) say(`  ${name}: ${JSON.stringify(d)}`);
  say(`total ${elapsed()}`);
  return {
    bench: 'workloads', clones, hosts: hostCount, threads, cores, cpus: availableParallelism(), reps, loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    options: { paths, render: `${width}x${height}`, samples, dbMbp, queries, random, tasks: useTasks, ...(fixedTasks ? { fixedTasks } : {}) },
    ...results,
  };
}
