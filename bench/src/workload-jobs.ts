/**
 * How the workloads bench runs one program as jobs on a running fleet and
 * what it measures (shared by quant, render and blast):
 *
 *   firstJobMs  the first N-clone job of a freshly deployed copy: boots the
 *               parent (init), snapshots it, forks, runs, reduces
 *   jobMs       the same job again (fastest of the repetitions): where the
 *               platform keeps parents between jobs with the same init, it
 *               forks from the warm parent; otherwise it boots one again.
 *               These jobs declare the workload's `tasks` (clones take tasks
 *               as they finish) unless told not to or the gateway refuses
 *               `tasks` (then `split` is "static", and says why)
 *   staticJobMs the same N-clone job without tasks, each clone its static
 *               share (the baseline), in the same repetitions as jobMs
 *   singleMs    one warm instance doing all the work: a 1-clone job with the
 *               same init, its clone's run time (clonesDetail[0].runMs)
 *   coldBootMs  the same job with `boot: "cold"`: every clone boots the module
 *               and runs init itself (measured); when the gateway refuses
 *               `boot`, computed as idealMs + ceil(N / cores) x the parent's
 *               measured init time (coldBootMeasured: false)
 *
 * Every time is POST /v1/jobs until the job's `done` event, as this client
 * sees it. The outputs of all of them must be the same result (`identical`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@flurry/infra';
import type { JobBody as JobWireBody } from '@flurry/sdk';
import { round } from './stats.js';
import { brokerBetween, type BrokerReading, type BrokerTraffic } from './broker-traffic.js';
import { cpuBetween, type CpuReading, type CpuSpent } from './fleet-cpu.js';

export interface JobRecordLite {
  id: string;
  state: string;
  clonesDetail: { index: number; host?: string; runMs?: number; startMs?: number }[];
  /** A task job's task counts. */
  tasks?: { total: number; backups: number; duplicates: number; failures: number };
}

/**
 * Client-side times (ms after the POST) of the job's events, and the parent's init and snapshot times when it
 * booted one. `lastCloneDoneAt` is the last `clone.done`, or in a task job the `progress` event with every task
 * done (clones still running backups then are stopped without a `clone.done`).
 */
export interface Phases { snapshotAt: number; initMs: number; snapshotMs: number; firstForkedAt: number; lastCloneDoneAt: number; doneAt: number }

export interface TimedJob {
  jobMs: number; job: JobRecordLite; output: Buffer; phases: Phases;
  /** Where the machine's CPU went from the POST to the result read (with ForkJoinOptions.readCpu). */
  cpu?: CpuSpent;
  /** What crossed the broker from the POST to the result read (with ForkJoinOptions.readBroker). */
  broker?: BrokerTraffic;
}

/** A job as a workload gives it: `init` and inputs as bytes (base64 is done here: the API's JobBody), or `initData`, the name of uploaded data. */
export interface JobBody {
  function: string; clones: number; init?: string | Buffer; initData?: string; input?: string | Buffer;
  boot?: 'fork' | 'cold'; tasks?: number;
}

/** Workload figures are milliseconds to a tenth. */
export const tenths = (x: number): number => round(x, 1);
const b64 = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v) : v).toString('base64');

export const guestWasm = (name: string) => readFileSync(join(repoRoot, 'functions', 'build', `${name}.wasm`));

export async function deployWasm(url: string, name: string, wasm: Buffer): Promise<void> {
  const res = await fetch(`${url}/v1/functions/${name}`, { method: 'PUT', body: new Uint8Array(wasm), headers: { 'content-type': 'application/wasm' } });
  if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
}

/** A refusal of the job spec by the gateway (400), with its message. */
export class JobRefused extends Error {}

/** Submits a job, follows its events until `done` (the timed part), then fetches the record and the result. */
export async function timedJob(url: string, body: JobBody): Promise<TimedJob> {
  const wire: JobWireBody = {
    function: body.function, clones: body.clones,
    ...(body.init !== undefined ? { init: b64(body.init) } : {}),
    ...(body.initData !== undefined ? { initData: body.initData } : {}),
    ...(body.input !== undefined ? { input: b64(body.input) } : {}),
    ...(body.boot !== undefined ? { boot: body.boot } : {}),
    ...(body.tasks !== undefined ? { tasks: body.tasks } : {}),
    timeoutMs: 600_000, retries: 0,
  };
  const payload = JSON.stringify(wire);
  const started = performance.now();
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
  if (res.status === 400) throw new JobRefused(`${body.function} job refused: ${await res.text()}`);
  if (res.status !== 202) throw new Error(`${body.function} job: ${res.status} ${await res.text()}`);
  const { job } = (await res.json()) as { job: { id: string } };
  const phases = await untilDone(url, job.id, started);
  const jobMs = performance.now() - started;
  const record = ((await (await fetch(`${url}/v1/jobs/${job.id}`)).json()) as { job: JobRecordLite }).job;
  const out = await fetch(`${url}/v1/jobs/${job.id}/result`);
  if (!out.ok) throw new Error(`${body.function} job result: ${out.status} ${await out.text()}`);
  return { jobMs, job: record, output: Buffer.from(await out.arrayBuffer()), phases };
}

/** Follows a job's event stream until it ends, noting when each phase came; throws unless the job is done. */
export async function untilDone(url: string, id: string, started: number): Promise<Phases> {
  const phases: Phases = { snapshotAt: NaN, initMs: NaN, snapshotMs: NaN, firstForkedAt: NaN, lastCloneDoneAt: NaN, doneAt: NaN };
  let tasksDoneAt = NaN;
  const res = await fetch(`${url}/v1/jobs/${id}/events`);
  if (!res.ok || !res.body) throw new Error(`job events: ${res.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = res.body.getReader();
  try {
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      buffered += decoder.decode(read.value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const kind = /^event: (.*)$/m.exec(event)?.[1];
        const at = performance.now() - started;
        if (kind === 'snapshot') {
          const data = JSON.parse(/^data: (.*)$/m.exec(event)?.[1] ?? '{}') as { initMs?: number; snapshotMs?: number };
          Object.assign(phases, { snapshotAt: at, initMs: data.initMs ?? NaN, snapshotMs: data.snapshotMs ?? NaN });
        }
        if (kind === 'forked' && Number.isNaN(phases.firstForkedAt)) phases.firstForkedAt = at;
        if (kind === 'clone.done') phases.lastCloneDoneAt = at;
        if (kind === 'progress') {
          // A task job's progress is {done, total} of tasks; a clone's also names its index.
          const p = JSON.parse(/^data: (.*)$/m.exec(event)?.[1] ?? '{}') as { index?: number; done?: number; total?: number };
          if (p.index === undefined && p.total !== undefined && p.done === p.total) tasksDoneAt = at;
        }
        if (kind === 'done') return { ...phases, ...(Number.isNaN(tasksDoneAt) ? {} : { lastCloneDoneAt: tasksDoneAt }), doneAt: at };
        if (kind === 'failed' || kind === 'cancelled') throw new Error(`job ${id} ${kind}: ${event.slice(0, 500)}`);
      }
    }
  } finally {
    // Ends the event stream (and its connection) whichever way the wait ended.
    await reader.cancel().catch(() => undefined);
  }
  throw new Error(`job ${id}: the event stream ended before the job did`);
}

/** One program's jobs: its init (inline or uploaded), its common clone input, and when two results are the same. */
export interface Workload {
  /** A fresh function name for this run (so that no parent is kept from before). */
  function: string;
  init: { init: string | Buffer } | { initData: string };
  input?: string | Buffer;
  /** The work units a job declares (`tasks`), for a job of `clones` clones. */
  tasks(clones: number): number;
  same(a: Buffer, b: Buffer): boolean;
}

/** `useTasks` false: every job splits statically, as before tasks (the baseline alone). */
export interface ForkJoinOptions {
  url: string; clones: number; cores: number; reps: number; useTasks: boolean; say?: (s: string) => void;
  /** Reads the fleet's and the machine's CPU counters: each job's breakdown then says where the CPU went. */
  readCpu?: () => CpuReading;
  /** Reads the broker's counters: each job's breakdown then says how many messages and bytes crossed it. */
  readBroker?: () => Promise<BrokerReading>;
}

/** Where a job's time went, from its events as this client saw them. */
export interface Breakdown {
  parentInitMs: number | null; snapshotMs: number | null; untilForkedMs: number; runSpanMs: number; reduceAndDoneMs: number;
  /** Null for a task job (its record has no run time per clone). */
  cloneRunMs: { min: number; max: number; sum: number } | null;
  /** A task job's backup tasks handed out and duplicate results dropped. */
  backups?: number; duplicates?: number;
  /** Clones that were forked (a task job forks no more than the free guest slots; the rest end without running). */
  clonesForked: number;
  cpu?: CpuSpent;
  broker?: BrokerTraffic;
}

export interface ForkJoinMeasurement {
  firstJobMs: number; jobMs: number; singleMs: number; idealMs: number; coldBootMs: number; coldBootMeasured: boolean;
  overheadPct: number; firstJobOverheadPct: number; identical: boolean; hosts: number;
  jobRuns: number[]; singleRuns: number[];
  firstJob: Breakdown; job: Breakdown; coldBootRefused?: string;
  /** The fastest 1-clone job's (its `cpu`: what one clone alone costs in CPU, whatever share of the cores it got). */
  single: Breakdown;
  /** How the measured jobs split the work: `tasks` (T), or `static` (with why, when tasks were wanted). */
  split: 'tasks' | 'static'; tasks: number | null; tasksRefused?: string;
  /** The static split in the same run, when the jobs used tasks: its time, overhead and runs, and staticJobMs / jobMs. */
  staticJobMs?: number; staticOverheadPct?: number; staticJobRuns?: number[]; staticJob?: Breakdown; staticVsTasks?: number;
  /** The warm job's output, for checks of the workload's own. */
  output: Buffer;
}

const orNull = (x: number) => (Number.isNaN(x) ? null : tenths(x));

export function breakdown(t: TimedJob): Breakdown {
  const p = t.phases;
  const runs = t.job.clonesDetail.map((c) => c.runMs ?? NaN);
  const tasks = t.job.tasks;
  return {
    parentInitMs: orNull(p.initMs), snapshotMs: orNull(p.snapshotMs),
    untilForkedMs: tenths(p.firstForkedAt), runSpanMs: tenths(p.lastCloneDoneAt - p.firstForkedAt), reduceAndDoneMs: tenths(p.doneAt - p.lastCloneDoneAt),
    clonesForked: t.job.clonesDetail.filter((c) => c.host !== undefined).length,
    cloneRunMs: runs.some(Number.isNaN) ? null : { min: tenths(Math.min(...runs)), max: tenths(Math.max(...runs)), sum: tenths(runs.reduce((a, b) => a + b, 0)) },
    ...(tasks ? { backups: tasks.backups, duplicates: tasks.duplicates } : {}),
    ...(t.cpu ? { cpu: t.cpu } : {}),
    ...(t.broker ? { broker: t.broker } : {}),
  };
}

/**
 * The first job, then `reps` times the same job and a 1-clone job (fastest of
 * each kept), then the cold-boot job.
 */
export async function measureForkJoin(w: Workload, opts: ForkJoinOptions): Promise<ForkJoinMeasurement> {
  const { clones, cores } = opts;
  const tasks = w.tasks(clones);
  const timed = async (url: string, body: JobBody): Promise<TimedJob> => {
    const brokerBefore = await opts.readBroker?.();
    const before = opts.readCpu?.();
    const t = await timedJob(url, body);
    const cpu = before && cpuBetween(before, opts.readCpu!());
    const broker = brokerBefore && brokerBetween(brokerBefore, await opts.readBroker!());
    return { ...t, ...(cpu && { cpu }), ...(broker && { broker }) };
  };
  const url = opts.url;
  const body = (n: number, split: { boot?: 'cold'; tasks?: number } = {}): JobBody =>
    ({ function: w.function, clones: n, ...w.init, ...(w.input !== undefined ? { input: w.input } : {}), ...split });
  const runOf = (t: TimedJob) => t.job.clonesDetail[0]?.runMs ?? t.jobMs;

  let first: TimedJob | undefined;
  let tasksRefused: string | undefined;
  if (opts.useTasks) {
    try {
      first = await timed(url, body(clones, { tasks }));
    } catch (err) {
      if (!(err instanceof JobRefused)) throw err;
      tasksRefused = err.message;
      opts.say?.(`  tasks not supported by this gateway (${err.message.slice(0, 200)}): every job splits statically`);
    }
  }
  const dynamic = first !== undefined;
  first ??= await timed(url, body(clones));
  const main = dynamic ? { tasks } : {};
  let best: TimedJob | undefined, single: TimedJob | undefined, bestStatic: TimedJob | undefined;
  const jobRuns: number[] = [], singleRuns: number[] = [], staticJobRuns: number[] = [];
  let identical = true;
  for (let i = 0; i < opts.reps; i++) {
    const job = await timed(url, body(clones, main));
    const one = await timed(url, body(1));
    jobRuns.push(tenths(job.jobMs));
    singleRuns.push(tenths(runOf(one)));
    if (!best || job.jobMs < best.jobMs) best = job;
    if (!single || runOf(one) < runOf(single)) single = one;
    identical &&= w.same(first.output, job.output) && w.same(first.output, one.output);
    if (dynamic) {
      const fixed = await timed(url, body(clones));
      staticJobRuns.push(tenths(fixed.jobMs));
      if (!bestStatic || fixed.jobMs < bestStatic.jobMs) bestStatic = fixed;
      identical &&= w.same(first.output, fixed.output);
    }
  }
  const singleMs = runOf(single!);
  const idealMs = singleMs / cores;

  let coldBootMs: number, coldBootMeasured = true, coldBootRefused: string | undefined;
  try {
    const cold = await timed(url, body(clones, { boot: 'cold', ...main }));
    coldBootMs = cold.jobMs;
    identical &&= w.same(first.output, cold.output);
  } catch (err) {
    if (!(err instanceof JobRefused)) throw err;
    coldBootRefused = err.message;
    opts.say?.(`  boot: cold not supported by this gateway (${err.message.slice(0, 200)}): cold boot computed from the parent's init time`);
    coldBootMs = idealMs + Math.ceil(clones / cores) * (Number.isNaN(first.phases.initMs) ? 0 : first.phases.initMs);
    coldBootMeasured = false;
  }
  const pct = (ms: number) => tenths(((ms - idealMs) / idealMs) * 100);
  const baseline = bestStatic
    ? {
      staticJobMs: tenths(bestStatic.jobMs), staticOverheadPct: pct(bestStatic.jobMs), staticJobRuns,
      staticJob: breakdown(bestStatic), staticVsTasks: round(bestStatic.jobMs / best!.jobMs, 3),
    }
    : {};
  return {
    firstJobMs: tenths(first.jobMs), jobMs: tenths(best!.jobMs), singleMs: tenths(singleMs), idealMs: tenths(idealMs),
    coldBootMs: tenths(coldBootMs), coldBootMeasured, ...(coldBootRefused ? { coldBootRefused } : {}),
    overheadPct: pct(best!.jobMs), firstJobOverheadPct: pct(first.jobMs), identical,
    hosts: new Set(best!.job.clonesDetail.flatMap((c) => (c.host === undefined ? [] : [c.host]))).size,
    jobRuns, singleRuns, firstJob: breakdown(first), job: breakdown(best!), single: breakdown(single!),
    split: dynamic ? 'tasks' : 'static', tasks: dynamic ? tasks : null, ...(tasksRefused ? { tasksRefused } : {}),
    ...baseline, output: best!.output,
  };
}
