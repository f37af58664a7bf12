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
import { LocalFleet } from '@flurry/infra';
import { measureQuant } from './workload-quant.js';
import { measureRender } from './workload-render.js';
import { measureBlast } from './workload-blast.js';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

interface Row { jobMs: number; idealMs: number; coldBootMs: number; overheadPct: number; singleMs: number; coldStartMs: number; ncbiMs?: number | null }

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const hostCount = option(args, 'hosts', 3);
  const threads = option(args, 'threads', 2);
  const clones = option(args, 'clones', 2 * hostCount * threads);
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  const cores = Math.min(clones, hostCount * threads, availableParallelism());
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : ['quant', 'render', 'blast'];
  const started = performance.now();

  say(`workloads: ${clones} clones per job over ${hostCount} hosts x ${threads} guest threads on ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); cores the job can use: ${cores}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const fleet = await LocalFleet.start({
    hosts: hostCount,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads) },
    gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_MAX_BODY: String(6 * 1024 * 1024) },
  });
  const rows: Record<string, Row> = {};
  const details: Record<string, unknown> = {};
  const row = (singleMs: number, jobMs: number, coldStartMs: number): Row => {
    const idealMs = singleMs / cores;
    return {
      jobMs: r1(jobMs), idealMs: r1(idealMs), coldBootMs: r1(idealMs + Math.ceil(clones / cores) * coldStartMs),
      overheadPct: r1(((jobMs - idealMs) / idealMs) * 100), singleMs: r1(singleMs), coldStartMs: r1(coldStartMs),
    };
  };
  try {
    if (only.includes('quant')) {
      const q = await measureQuant({ fleetUrl: fleet.url, clones, hostsUsableCores: cores });
      rows.quant = row(q.singleMs, q.jobMs, q.coldBootMs ?? 0);
      details.quant = { size: `Asian call, ${q.paths} paths x ${q.steps} steps`, singleFrom: q.extrapolated ? 'handle(), extrapolated from a quarter of the paths' : 'handle(), all the paths', identical: q.identical, price: q.price };
      say(`  quant done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    if (only.includes('render')) {
      const m = await measureRender({ fleetUrl: fleet.url, clones });
      rows.render = row(m.singleMs, m.jobMs, m.coldStartMs);
      details.render = { size: `${m.scene}, ${m.width}x${m.height}, ${m.samples} samples, depth ${m.maxDepth}`, singleFrom: '1-clone job, clone run time', identical: m.identical, hosts: m.hosts };
      say(`  render done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
    if (only.includes('blast')) {
      const m = await measureBlast({ fleetUrl: fleet.url, clones, cores });
      rows.blast = { ...row(m.singleMs, m.jobMs, m.coldStartMs), ncbiMs: m.ncbiMs };
      details.blast = { size: `${m.sequences} sequences (${m.bases} bp: lambda + dm3 upstream), ${m.queries} queries`, singleFrom: '1-clone job, clone run time', identical: m.identical, lines: m.lines, ncbiLines: m.ncbiLines, ncbiVersion: m.ncbiVersion, ncbiThreads: m.ncbiThreads, hosts: m.hosts };
      say(`  blast done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    }
  } finally {
    await fleet.stop();
  }

  const pad = (s: string | number, n: number) => String(s).padStart(n);
  say('');
  say(`${'workload'.padEnd(9)}${pad('single', 9)}${pad('ideal', 9)}${pad('job', 9)}${pad('overhead', 10)}${pad('coldStart', 11)}${pad('coldBoot', 10)}${pad('cold/job', 10)}${pad('ncbi', 9)}${pad('ncbi/job', 10)}`);
  for (const [name, r] of Object.entries(rows)) {
    say(`${name.padEnd(9)}${pad(r.singleMs.toFixed(0), 9)}${pad(r.idealMs.toFixed(0), 9)}${pad(r.jobMs.toFixed(0), 9)}${pad(r.overheadPct.toFixed(1) + '%', 10)}${pad(r.coldStartMs.toFixed(0), 11)}${pad(r.coldBootMs.toFixed(0), 10)}${pad((r.coldBootMs / r.jobMs).toFixed(2), 10)}` +
      (r.ncbiMs != null ? `${pad(r.ncbiMs.toFixed(0), 9)}${pad((r.ncbiMs / r.jobMs).toFixed(2), 10)}` : ''));
  }
  say('(ms) single: one warm instance, all the work (measured); ideal = single / cores (computed); job: N-clone job, POST to done (measured);');
  say(`     coldStart: one cold instance, measured (fresh module copy: quant first handle() call, render/blast a tiny 1-clone job incl. job costs);`);
  say(`     coldBoot = ideal + ceil(${clones} / ${cores}) x coldStart (computed, not measured); ncbi: blastn -task blastn -num_threads ${cores} (measured)`);
  for (const [name, d] of Object.entries(details)) say(`  ${name}: ${JSON.stringify(d)}`);
  say(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return {
    bench: 'workloads', clones, hosts: hostCount, threads, cores, cpus: availableParallelism(),
    ...Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, { ...r, ...(details[k] as object) }])),
  };
}
