/**
 * `npm run bench -- workloads --floor [--reps R] [--threads 6] [--only ...]`: the floor a job's run
 * span can reach on this machine, with no fleet at all. One process, one GuestPool (the hosts'
 * own guest threads and clones), each workload's parent warmed once; then its T tasks (the
 * workloads bench's own T for 12 clones) run by
 *
 *   aloneMs    one clone taking every task                                  (measured)
 *   pairMs     `cores` clones side by side, one snapshot (their pages shared) (measured)
 *   copiesMs   the same, each clone of its own parent of the same init: two copies
 *              of the parent's memory, as clones on two hosts have          (measured)
 *   crowdMs    --threads clones on `cores` cores (the fleet's 3 hosts x 2 threads) (measured)
 *   pairVsIdeal  pairMs / (aloneMs / cores): 1 is a perfect floor; likewise the others
 *
 * The clones take tasks one at a time from a queue in this process (the task server with no
 * network between), so the split is as even as the tasks allow. Per clone: tasks, time in
 * them, time outside them (its start, the waits for tasks), and its end after the first clone's
 * (the tail). Per run: this process's CPU and minor page faults. Fastest of R, alternated.
 * `identical`: every run's task outputs are the same bytes in task order.
 */
import { availableParallelism, loadavg } from 'node:os';
import { createLogger } from '@flurry/core';
import { GuestPool } from '@flurry/worker-host';
import { option } from './options.js';
import { guestWasm, tenths } from './workload-jobs.js';
import { quantWorkload } from './workload-quant.js';
import { renderTasks, renderWorkload } from './workload-render.js';
import { blastInputs } from './workload-blast.js';

type TaskSource = Parameters<GuestPool['runTasks']>[4];

interface FloorTarget {
  name: string; wasm: string; init: Uint8Array; input: Uint8Array; tasks: number;
  /** What of a task's output must be the same in every run (quant's also says how long the task took). */
  comparable(output: Uint8Array): string;
}

interface CloneFigures { tasks: number; inTasksMs: number; outsideMs: number; endMs: number; tailMs: number; pagesCopied: number }
interface RunFigures { ms: number; cpuMs: number; minorFaults: number; clones: CloneFigures[]; outputs: Uint8Array[] }

const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (o: Uint8Array) => Buffer.from(o).toString('base64');
const withoutTime = (o: Uint8Array) => JSON.stringify({ ...(JSON.parse(Buffer.from(o).toString('utf8')) as object), ms: undefined });
const MIN = 60_000;

/** `keys.length` clones side by side (clone c of snapshot keys[c]), taking the T tasks one at a time from one queue. */
async function clonesTaking(pool: GuestPool, keys: string[], t: FloorTarget, tag: string): Promise<RunFigures> {
  let next = 0;
  const outputs: Uint8Array[] = new Array<Uint8Array>(t.tasks);
  const failures: string[] = [];
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  const clones = await Promise.all(keys.map(async (key, c) => {
    let tasks = 0, inTasksMs = 0;
    const source: TaskSource = {
      next: () => Promise.resolve(next < t.tasks ? [next++] : []),
      started: () => undefined,
      done: (task, output, runMs) => { outputs[task] = output; tasks++; inTasksMs += runMs; },
      failed: (task, error) => { failures.push(`task ${task}: ${error.message}`); },
    };
    const r = await pool.runTasks(key, t.tasks, t.input, `${tag}-${c}`, source, undefined, 10 * MIN);
    const endMs = performance.now() - t0;
    return { tasks, inTasksMs, outsideMs: endMs - inTasksMs, endMs, tailMs: 0, pagesCopied: r.memory?.pagesFromStore ?? 0 };
  }));
  const ms = performance.now() - t0;
  if (failures.length > 0) throw new Error(`${t.name}: ${failures.join('; ')}`);
  const firstEnd = Math.min(...clones.map((c) => c.endMs));
  for (const c of clones) c.tailMs = c.endMs - firstEnd;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, minorFaults: process.resourceUsage().minorPageFault - faults0, clones, outputs };
}

function targets(args: string[], only: string[]): FloorTarget[] {
  const out: FloorTarget[] = [];
  // The workloads bench's own sizes and task counts (its 12 clones).
  if (only.includes('quant')) {
    const w = quantWorkload('quant', { paths: option(args, 'paths', 2 ** 23, { positive: true }), steps: 32 });
    out.push({ name: 'quant', wasm: 'quant', init: utf8(String((w.init as { init: string }).init)), input: new Uint8Array(0), tasks: w.tasks(12), comparable: withoutTime });
  }
  if (only.includes('render')) {
    const [width, height] = (args.includes('--render') ? args[args.indexOf('--render') + 1]! : '320x240').split('x').map(Number) as [number, number];
    const w = renderWorkload('render', { width, height, samples: option(args, 'samples', 48, { positive: true }) });
    out.push({ name: 'render', wasm: 'render', init: utf8(String((w.init as { init: string }).init)), input: new Uint8Array(0), tasks: renderTasks(height, 12), comparable: bytes });
  }
  if (only.includes('blast')) {
    const b = blastInputs({ dbMbp: option(args, 'db-mbp', 30, { positive: true }), queries: option(args, 'queries', 300, { positive: true }), random: option(args, 'random', 20) });
    out.push({ name: 'blast', wasm: 'blast', init: new Uint8Array(b.gz), input: utf8(b.queryFasta), tasks: b.queryCount, comparable: bytes });
  }
  return out;
}


export async function runFloor(args: string[]): Promise<Record<string, unknown>> {
  const reps = option(args, 'reps', 2, { positive: true });
  const cores = availableParallelism();
  const crowd = option(args, 'threads', 6, { positive: true });
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : ['quant', 'render', 'blast'];
  const say = (s: string) => { if (!args.includes('--quiet')) console.log(s); };
  say(`workloads --floor: no fleet; one process, ${Math.max(cores, crowd)} guest threads; 1, ${cores} and ${crowd} clones taking tasks from one queue; ` +
    `fastest of ${reps}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const log = createLogger('bench', {}, 'warn');
  const limits = { callTimeoutMs: 10 * MIN, initTimeoutMs: 10 * MIN, maxOutputBytes: 4 * 1024 * 1024, maxLogLines: 64, maxLogBytes: 65536 };
  const results: Record<string, unknown> = {};
  for (const t of targets(args, only)) {
    const pool = await GuestPool.start({ threads: Math.max(cores, crowd), limits, log });
    try {
      const wasm = new Uint8Array(guestWasm(t.wasm));
      const inits = [];
      // Parents of the same init, one per clone of the copies run: each its own memory.
      for (let c = 0; c < cores; c++) inits.push((await pool.warm(`${t.name}-${c}`, wasm, t.init)).initMs);
      const shared = `${t.name}-0`;
      const runs: Record<'alone' | 'pair' | 'copies' | 'crowd', RunFigures[]> = { alone: [], pair: [], copies: [], crowd: [] };
      for (let r = 0; r < reps; r++) {
        runs.alone.push(await clonesTaking(pool, [shared], t, `alone-${r}`));
        runs.pair.push(await clonesTaking(pool, Array.from({ length: cores }, () => shared), t, `pair-${r}`));
        runs.copies.push(await clonesTaking(pool, Array.from({ length: cores }, (_, c) => `${t.name}-${c}`), t, `copies-${r}`));
        runs.crowd.push(await clonesTaking(pool, Array.from({ length: crowd }, () => shared), t, `crowd-${r}`));
      }
      const all = Object.values(runs).flat();
      const first = all[0]!.outputs.map((o) => t.comparable(o));
      const identical = all.every((x) => x.outputs.length === first.length && x.outputs.every((o, i) => t.comparable(o) === first[i]));
      const best = (xs: RunFigures[]) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
      const aloneMs = best(runs.alone).ms;
      const idealMs = aloneMs / cores;
      const figures = (name: keyof typeof runs) => {
        const b = best(runs[name]);
        return {
          ms: tenths(b.ms), vsIdeal: Math.round((b.ms / (name === 'alone' ? aloneMs : idealMs)) * 1000) / 1000, runs: runs[name].map((x) => tenths(x.ms)),
          cpuMs: tenths(b.cpuMs), minorFaults: b.minorFaults,
          clones: b.clones.map((c) => ({ tasks: c.tasks, inTasksMs: tenths(c.inTasksMs), outsideMs: tenths(c.outsideMs), tailMs: tenths(c.tailMs), pagesCopied: c.pagesCopied })),
        };
      };
      const row = { tasks: t.tasks, initMs: inits.map(tenths), aloneMs: tenths(aloneMs), idealMs: tenths(idealMs), alone: figures('alone'), pair: figures('pair'), copies: figures('copies'), crowd: figures('crowd'), identical };
      results[t.name] = row;
      say(`  ${t.name} (T ${t.tasks}): alone ${row.alone.ms} ms; ${cores} side by side ${row.pair.ms} ms (${row.pair.vsIdeal}x ideal), ` +
        `on ${cores} copies ${row.copies.ms} ms (${row.copies.vsIdeal}x), ${crowd} clones ${row.crowd.ms} ms (${row.crowd.vsIdeal}x); identical ${identical}`);
    } finally {
      await pool.close();
    }
  }
  return { bench: 'workloads', mode: 'floor', cores, crowd, reps, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), ...results };
}
