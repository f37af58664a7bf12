/**
 * The `render` workload (path tracer, functions/render) on a running fleet,
 * and the job helpers the other workloads share.
 *
 *   singleMs    a 1-clone job's clone run time (clonesDetail[0].runMs): one warm
 *               instance (forked from the initialized parent) rendering the
 *               whole image; handle() would hit the 10 s call limit
 *   jobMs       POST /v1/jobs until its `done` event, `clones` clones
 *   coldStartMs a 1-clone job of a tiny image (8x8, 1 sample, the same model)
 *               on a freshly deployed copy of the module: compile, instantiate,
 *               init (parse, BVH), snapshot, fork, run, reduce. An upper bound
 *               of what one cold instance pays before it starts working
 *
 * The scene: the assimp Wuson model (fetched from Debian's package when first
 * needed, as the test does), else the committed trefoil knot
 * (functions/examples/render.json). The N-clone PNG must be byte for byte the
 * 1-clone PNG (`identical`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assimpModels, repoRoot, WUSON_OBJ } from '@flurry/infra';

export interface JobRecordLite {
  id: string;
  state: string;
  clonesDetail: { index: number; host?: string; runMs?: number; startMs?: number }[];
}

/** Client-side times (ms after the POST) of the job's events, and the parent's init and snapshot times. */
export interface Phases { snapshotAt: number; initMs: number; snapshotMs: number; firstForkedAt: number; lastCloneDoneAt: number; doneAt: number }

export interface TimedJob { jobMs: number; job: JobRecordLite; output: Buffer; phases: Phases }

const b64 = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v) : v).toString('base64');

export async function deployWasm(url: string, name: string, wasm: Buffer): Promise<void> {
  const res = await fetch(`${url}/v1/functions/${name}`, { method: 'PUT', body: new Uint8Array(wasm), headers: { 'content-type': 'application/wasm' } });
  if (!res.ok) throw new Error(`deploy ${name}: ${res.status} ${await res.text()}`);
}

export const guestWasm = (name: string) => readFileSync(join(repoRoot, 'functions', 'build', `${name}.wasm`));

/** Submits a job, follows its events until `done` (the timed part), then fetches the record and the result. */
export async function timedJob(url: string, body: { function: string; clones: number; init: string | Buffer; inputs?: (string | Buffer)[] }): Promise<TimedJob> {
  const payload = JSON.stringify({
    function: body.function, clones: body.clones, init: b64(body.init),
    ...(body.inputs ? { inputs: body.inputs.map(b64) } : {}), timeoutMs: 600_000, retries: 0,
  });
  const started = performance.now();
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
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
  const res = await fetch(`${url}/v1/jobs/${id}/events`);
  if (!res.ok || !res.body) throw new Error(`job events: ${res.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
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
      if (kind === 'done') return { ...phases, doneAt: at };
      if (kind === 'failed' || kind === 'cancelled') throw new Error(`job ${id} ${kind}: ${event.slice(0, 500)}`);
    }
  }
  throw new Error(`job ${id}: the event stream ended before the job did`);
}

export const round = (x: number) => Math.round(x * 10) / 10;

export interface RenderOptions { fleetUrl: string; clones: number; reps?: number; width?: number; height?: number; samples?: number }

export interface RenderMeasurement {
  scene: string; triangles?: number; width: number; height: number; samples: number; maxDepth: number; clones: number;
  jobMs: number; singleMs: number; coldStartMs: number; identical: boolean; hosts: number;
  /** Every repetition (the figures above are the minimums), and the fastest job's phases and clone run times. */
  jobRuns: number[]; singleRuns: number[]; phases: Phases; cloneRunMs: number[];
}

/** Alternates `reps` single-instance (1-clone) jobs and N-clone jobs; keeps the fastest of each. */
export async function singleAndMany(url: string, reps: number, one: () => Promise<TimedJob>, many: () => Promise<TimedJob>): Promise<{
  single: TimedJob; many: TimedJob; singleRuns: number[]; jobRuns: number[]; identical: boolean;
}> {
  let bestSingle: TimedJob | undefined, bestMany: TimedJob | undefined;
  const singleRuns: number[] = [], jobRuns: number[] = [];
  let identical = true;
  const runOf = (t: TimedJob) => t.job.clonesDetail[0]?.runMs ?? t.jobMs;
  for (let i = 0; i < reps; i++) {
    const s = await one();
    const m = await many();
    singleRuns.push(round(runOf(s)));
    jobRuns.push(round(m.jobMs));
    if (!bestSingle || runOf(s) < runOf(bestSingle)) bestSingle = s;
    if (!bestMany || m.jobMs < bestMany.jobMs) bestMany = m;
    identical &&= s.output.equals(m.output);
  }
  void url;
  return { single: bestSingle!, many: bestMany!, singleRuns, jobRuns, identical };
}


export async function measureRender(opts: RenderOptions): Promise<RenderMeasurement> {
  const url = opts.fleetUrl.replace(/\/$/, '');
  const width = opts.width ?? 240, height = opts.height ?? 180, samples = opts.samples ?? 48, maxDepth = 4;
  let base: Record<string, unknown>;
  let scene: string;
  const models = assimpModels();
  if ('dir' in models) {
    base = { model: readFileSync(join(models.dir, WUSON_OBJ), 'utf8'), rotateY: 150 };
    scene = 'assimp Wuson (OBJ, 3,732 triangles)';
  } else {
    base = JSON.parse(readFileSync(join(repoRoot, 'functions', 'examples', 'render.json'), 'utf8')) as Record<string, unknown>;
    scene = `trefoil knot (functions/examples/render.json, 6,144 triangles; the Wuson model cannot be had: ${models.reason})`;
  }
  const spec = JSON.stringify({ ...base, width, height, samples, maxDepth });
  const wasm = guestWasm('render');

  const coldName = `render-cold-${Date.now().toString(36)}`;
  await deployWasm(url, coldName, wasm);
  const cold = await timedJob(url, { function: coldName, clones: 1, init: JSON.stringify({ ...base, width: 8, height: 8, samples: 1, maxDepth: 1 }) });
  await fetch(`${url}/v1/functions/${coldName}`, { method: 'DELETE' });

  await deployWasm(url, 'render', wasm);
  // Warm-up: a small job, so the module is compiled on the hosts.
  await timedJob(url, { function: 'render', clones: 2, init: JSON.stringify({ ...base, width: 16, height: 16, samples: 1, maxDepth: 1 }) });
  const { single, many, singleRuns, jobRuns, identical } = await singleAndMany(url, opts.reps ?? 1,
    () => timedJob(url, { function: 'render', clones: 1, init: spec }),
    () => timedJob(url, { function: 'render', clones: opts.clones, init: spec }));
  return {
    scene, width, height, samples, maxDepth, clones: opts.clones,
    jobMs: round(many.jobMs), singleMs: round(single.job.clonesDetail[0]?.runMs ?? single.jobMs), coldStartMs: round(cold.jobMs),
    identical, hosts: new Set(many.job.clonesDetail.map((c) => c.host)).size,
    jobRuns, singleRuns, phases: many.phases, cloneRunMs: many.job.clonesDetail.map((c) => round(c.runMs ?? NaN)),
  };
}
