// Task jobs (docs/jobs.md, "Tasks"): a real nats-server, a gateway and three
// host processes. Clones take task indices from the job's task server and run
// run_task(task, tasks) for each; the result must be the same for any clone
// count and any timing: with 1, 3 and 8 clones, with a slow task that gets a
// backup, and with a clone's host killed mid-job.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { decode, encode, JobObjects, JobSubjects, requestRelease, ResultsStream, type CloneResult, type ForkRequest, type JobRecord, type TaskReply } from '@flurry/core';

/** A run of task results as stored: its attempt, the host that ran it, its first task and count. */
interface StoredRun { requestId: string; hostId: string; first: number; count: number }
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy } from './helpers/functions.js';
import { gatewayApi, json, until } from './helpers/gateway-api.js';
import { b64, finishedJob, jobUntil, submitJob } from './helpers/jobs.js';
import { slowModule, wat } from './helpers/wat.js';

/**
 * run_task reads its input once per instance (four u32: the ms each task
 * spins, a slow task, its ms, a task that traps) and writes 12 bytes that
 * depend only on (task, tasks); reduce echoes its framed input.
 */
const TASKS_GUEST = wat(`(module
  (import "flurry" "monotonic_ms" (func $now (result f64)))
  (import "flurry" "output_write" (func $out (param i32 i32)))
  (import "flurry" "input_read" (func $read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (global $loaded (mut i32) (i32.const 0))
  (func $spin (param $ms f64) (local $t f64)
    (local.set $t (call $now))
    (block $b (loop $l (br_if $b (f64.ge (f64.sub (call $now) (local.get $t)) (local.get $ms))) (br $l))))
  (func (export "run_task") (param $t i32) (param $n i32) (result i32)
    (if (i32.eqz (global.get $loaded)) (then
      (drop (call $read (i32.const 0) (i32.const 16) (i32.const 0)))
      (global.set $loaded (i32.const 1))))
    (if (i32.eq (local.get $t) (i32.load (i32.const 12))) (then unreachable))
    (call $spin (f64.convert_i32_u (select (i32.load (i32.const 8)) (i32.load (i32.const 0)) (i32.eq (local.get $t) (i32.load (i32.const 4))))))
    (i32.store (i32.const 100) (local.get $t))
    (i32.store (i32.const 104) (local.get $n))
    (i32.store (i32.const 108) (i32.mul (local.get $t) (i32.const 2654435761)))
    (call $out (i32.const 100) (i32.const 12))
    (i32.const 0))
  (func (export "reduce") (param $n i32) (result i32) (local $off i32) (local $got i32)
    (block $done (loop $l
      (local.set $got (call $read (i32.const 2048) (i32.const 1024) (local.get $off)))
      (br_if $done (i32.eqz (local.get $got)))
      (call $out (i32.const 2048) (local.get $got))
      (local.set $off (i32.add (local.get $off) (local.get $got)))
      (br $l)))
    (i32.const 0))
  (func (export "run") (param i32 i32) (result i32) (i32.const 0)))`);

const NO_TRAP = 0xffffffff;

/** The guest's input: every task spins `ms`, task `slow` spins `slowMs`, task `trap` traps. */
function input(ms: number, slow = NO_TRAP, slowMs = 0, trap = NO_TRAP): string {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(ms, 0);
  b.writeUInt32LE(slow, 4);
  b.writeUInt32LE(slowMs, 8);
  b.writeUInt32LE(trap, 12);
  return b64(new Uint8Array(b));
}

/** What reduce sees for `tasks` tasks: each task's 12 bytes, framed, in task order. */
function expectedReduce(tasks: number): Buffer {
  const parts: Buffer[] = [];
  for (let t = 0; t < tasks; t++) {
    const frame = Buffer.alloc(16);
    frame.writeUInt32LE(12, 0);
    frame.writeUInt32LE(t, 4);
    frame.writeUInt32LE(tasks, 8);
    frame.writeUInt32LE(Math.imul(t, 2654435761) >>> 0, 12);
    parts.push(frame);
  }
  return Buffer.concat(parts);
}

describe('task jobs', () => {
  let fleet: LocalFleet;
  const api = gatewayApi(() => fleet.url);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '3', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_HOST_TTL_S: '2', FLURRY_JOB_LEASE_MS: '2000', LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'tasks', TASKS_GUEST)).ok).toBe(true);
    expect((await deploy(fleet.url, 'no-tasks', slowModule(1, 'run'))).ok).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  async function result(job: JobRecord): Promise<Buffer> {
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    const res = await api('GET', `/v1/jobs/${job.id}/result`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  it('identical - 1, 3 and 8 clones give the same result, every task counted once, in task order', async () => {
    const tasks = 64;
    const results: Buffer[] = [];
    for (const clones of [1, 3, 8]) {
      const submitted = await submitJob(api, { function: 'tasks', clones, tasks, input: input(5) });
      expect(submitted.tasks).toEqual({ total: tasks, done: 0, running: 0, backups: 0, duplicates: 0, failures: 0 });
      const job = await finishedJob(api, submitted.id);
      expect(job.tasks).toMatchObject({ total: tasks, done: tasks, failures: 0 });
      results.push(await result(job));
    }
    expect(results[0].equals(expectedReduce(tasks))).toBe(true);
    expect(results[1].equals(results[0])).toBe(true);
    expect(results[2].equals(results[0])).toBe(true);
    // Without reduce: the task outputs, by task index.
    const plain = await finishedJob(api, (await submitJob(api, { function: 'tasks', clones: 3, tasks: 10, input: input(1), reduce: false })).id);
    const { outputs } = await json<{ outputs: string[] }>(await api('GET', `/v1/jobs/${plain.id}/result`));
    expect(outputs.map((o) => Buffer.from(o, 'base64').readUInt32LE(0))).toEqual([...Array(10).keys()]);
  });

  it('ended - a clone that asks after its job ended is told to end, not left asking a server that is gone', async () => {
    const job = await finishedJob(api, (await submitJob(api, { function: 'tasks', clones: 3, tasks: 6, input: input(1) })).id);
    expect(job.state).toBe('done');
    // A clone forked as a slot freed near the end starts after it: without an answer it would ask again for a
    // minute (the host's GIVE_UP_MS) with its guest thread held, delaying the next job's clones.
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const late = decode<TaskReply>((await nc.request(JobSubjects.tasks(job.tenant, job.id), encode({ requestId: `${job.id}.late`, hostId: 'host-1', index: 2, failed: [] }), { timeout: 5000 })).data);
      expect(late).toEqual({ ok: true, tasks: [], end: true });
    } finally {
      await nc.close();
    }
  });

  it('backup - a slow task still running when the rest are done is given to an idle clone too; the first result counts', async () => {
    const tasks = 12;
    const job = await finishedJob(api, (await submitJob(api, { function: 'tasks', clones: 4, tasks, input: input(10, 3, 3000) })).id);
    expect(job.tasks!.backups).toBeGreaterThanOrEqual(1);
    expect((await result(job)).equals(expectedReduce(tasks))).toBe(true);
  });

  it('host killed - a host running clones dies mid-job; its tasks run elsewhere and the result is identical', async () => {
    const tasks = 120;
    const job = await submitJob(api, { function: 'tasks', clones: 6, tasks, input: input(150) });
    const running = await jobUntil(api, job.id, 'to run tasks on a host other than the parent\'s', (j) =>
      (j.tasks?.done ?? 0) >= 6 && j.clonesDetail.some((c) => c.state === 'running' && c.host !== j.parentHost));
    const victim = running.clonesDetail.find((c) => c.state === 'running' && c.host !== running.parentHost)!.host!;
    const host = fleet.hosts.find((h) => h.ready.hostId === victim);
    expect(host, victim).toBeDefined();
    await host!.kill();
    const done = await finishedJob(api, job.id, { timeoutMs: 90_000 });
    expect(done.tasks).toMatchObject({ total: tasks, done: tasks, failures: 0 });
    expect((await result(done)).equals(expectedReduce(tasks))).toBe(true);
  });

  it('gateway restart - the coordinator dies mid-job; the next one counts the tasks stored meanwhile and the result is identical', async () => {
    const tasks = 60;
    const job = await submitJob(api, { function: 'tasks', clones: 3, tasks, input: input(100) });
    const before = await jobUntil(api, job.id, 'to have tasks done', (j) => (j.tasks?.done ?? 0) >= 10);
    expect(before.tasks!.done).toBeLessThan(tasks);
    await fleet.restartGateway({ hard: true });
    // Every record the next coordinator writes counts at least the tasks stored before: none starts over.
    const seen: number[] = [];
    const done = await jobUntil(api, job.id, 'to end', (j) => {
      seen.push(j.tasks!.done);
      return j.state === 'done' || j.state === 'failed';
    }, { timeoutMs: 90_000, throughOutages: true });
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(before.tasks!.done);
    expect(done.tasks).toMatchObject({ total: tasks, done: tasks, failures: 0 });
    expect((await result(done)).equals(expectedReduce(tasks))).toBe(true);
    // The kept parent's descriptor is not stored with the job: the next coordinator asked the parent's host again, which had it.
    expect(done.parentHost).toBe(before.parentHost);
    expect(done.parentReused).toBe(true);
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const objects = await new Objm(nc).open(JobObjects);
      const names: string[] = [];
      for (const o of await objects.list()) if (o.name.startsWith(`${job.tenant}/${job.id}/`)) names.push(o.name);
      expect(names.some((n) => n.includes('/spec/'))).toBe(true);
      expect(names.filter((n) => n.includes('/descriptor/'))).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it('failures - a task that traps counts against its retries, per task; past them the job fails naming it', async () => {
    const job = await finishedJob(api, (await submitJob(api, { function: 'tasks', clones: 2, tasks: 8, retries: 1, input: input(1, NO_TRAP, 0, 5) })).id);
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('guest_trap');
    expect(job.error?.message).toMatch(/^task 5 failed 2 times: /);
    expect(job.tasks!.failures).toBe(2);
  });

  it('missing - a run heard but gone from the results stream when the job checks runs again; the reduce made from it meanwhile is dropped, the result identical', async () => {
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const jsm = await jetstreamManager(nc);
      const tasks = 40;
      const job = await submitJob(api, { function: 'tasks', clones: 2, tasks, input: input(40) });
      // The job's first run of results, deleted from the stream once stored there: the coordinator heard it already.
      const first = await new Promise<string>((resolve) => nc.subscribe(`${JobSubjects.results(job.tenant, job.id)}.>`, { max: 1, callback: (_e, m) => resolve(m.subject) }));
      const stored = await until('the run to be stored', () => jsm.streams.getMessage(ResultsStream, { last_by_subj: first }).then((m) => m ?? undefined, () => undefined));
      await jsm.streams.deleteMessage(ResultsStream, stored.seq);
      const done = await finishedJob(api, job.id);
      expect((await result(done)).equals(expectedReduce(tasks))).toBe(true);
      // Its tasks were run and stored again (after the check's wait for them, RESULTS_STORED_WAIT_MS): a later message holds its first task.
      const [lo] = first.slice(first.lastIndexOf('.') + 1).split('-').map(Number);
      const info = await jsm.streams.info(ResultsStream, { subjects_filter: `${JobSubjects.results(job.tenant, job.id)}.>` });
      const again = Object.keys(info.state.subjects ?? {}).find((subject) => {
        const [a, b] = subject.slice(subject.lastIndexOf('.') + 1).split('-').map(Number);
        return a <= lo && lo <= b;
      });
      expect(again).toBeDefined();
      expect((await jsm.streams.getMessage(ResultsStream, { last_by_subj: again! }))!.seq).toBeGreaterThan(stored.seq);
      expect(done.tasks).toMatchObject({ total: tasks, done: tasks, failures: 0 });
    } finally {
      await nc.close();
    }
  }, 90_000);

  /**
   * While `job` (submitted by `submit`) runs: every task run stored for it (its attempt, host, first task and
   * count) and every reduce request sent to a host for it, as the broker carries them.
   */
  async function watchReduce(submit: () => Promise<JobRecord>, duringRun?: (job: JobRecord, runs: StoredRun[]) => Promise<void>) {
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const runs: StoredRun[] = [];
      const reduces: ForkRequest[] = [];
      let jobId = '';
      nc.subscribe('flurry.results.>', { callback: (_e, m) => {
        const r = decode<CloneResult>(m.data);
        if (r.requestId.startsWith(`${jobId}.`) && r.taskRunMs) runs.push({ requestId: r.requestId, hostId: r.hostId, first: r.index, count: r.taskRunMs.length });
      } });
      nc.subscribe('flurry.host.*.fork', { callback: (_e, m) => {
        const req = decode<ForkRequest>(m.data);
        if (req.jobId === jobId && req.entry === 'reduce') reduces.push(req);
      } });
      await nc.flush();
      const job = await submit();
      jobId = job.id;
      if (duringRun) await duringRun(job, runs);
      const done = await finishedJob(api, job.id);
      return { done, runs, reduces };
    } finally {
      await nc.close();
    }
  }

  it('kept outputs - the parent\'s host keeps its own clones\' task outputs: the reduce request names those runs and carries only the others; the result identical', async () => {
    const tasks = 64;
    const { done, runs, reduces } = await watchReduce(() => submitJob(api, { function: 'tasks', clones: 3, tasks, input: input(20) }));
    expect((await result(done)).equals(expectedReduce(tasks))).toBe(true);
    expect(done.tasks).toMatchObject({ done: tasks, duplicates: 0 });
    // One reduce, on the parent's host, naming exactly the runs its own clones stored; the others' outputs sent.
    expect(reduces.length).toBe(1);
    const ownRuns = runs.filter((r) => r.hostId === done.parentHost).map(({ requestId, first, count }) => ({ requestId, first, count })).sort((a, b) => a.first - b.first);
    expect(ownRuns.length).toBeGreaterThan(0);
    expect(reduces[0].keptOutputs).toEqual(ownRuns);
    const keptTasks = ownRuns.reduce((n, r) => n + r.count, 0);
    expect(keptTasks).toBeLessThan(tasks);
    expect(reduces[0].clones[0].input.length).toBe(16 * (tasks - keptTasks));
  });

  it('kept outputs lost - the parent\'s host lets go of them mid-job (the job\'s release): the reduce naming them is refused not_found and sent again with every output; the result identical', async () => {
    const tasks = 40;
    // The last task spins 1.5 s: the job is still running when the release below comes, however late its record shows the parent.
    const { done, reduces } = await watchReduce(() => submitJob(api, { function: 'tasks', clones: 2, tasks, input: input(60, tasks - 1, 1500) }), async (job, runs) => {
      const running = await jobUntil(api, job.id, 'to run on its parent\'s host', (j) => j.parentHost !== undefined && j.snapshotId !== undefined && j.clonesDetail.some((c) => c.host === j.parentHost));
      await until('a run stored by the parent\'s host', async () => {
        const run = runs.find((r) => r.hostId === running.parentHost);
        if (run) return run;
        const now = await json<{ job: JobRecord }>(await api('GET', `/v1/jobs/${job.id}`));
        if (now.job.state !== 'running') throw new Error(`the job went ${now.job.state} before its parent's host stored a run`);
        return undefined;
      });
      const nc = await connect(fleet.adminConnectOptions());
      try {
        await requestRelease(nc, running.parentHost!, { tenant: job.tenant, snapshotId: running.snapshotId!, holder: job.id });
      } finally {
        await nc.close();
      }
    });
    expect(done.state).toBe('done');
    expect((await result(done)).equals(expectedReduce(tasks))).toBe(true);
    expect(reduces.length).toBe(2);
    expect(reduces[0].keptOutputs?.length).toBeGreaterThan(0);
    expect(reduces[1].keptOutputs).toBeUndefined();
    expect(reduces[1].clones[0].input.length).toBe(16 * tasks);
  });

  it('untrusted - the task server answers a malformed request with bad_request, and gives an attempt it never sent nothing', async () => {
    const job = await submitJob(api, { function: 'tasks', clones: 2, tasks: 20, input: input(100) });
    await jobUntil(api, job.id, 'to run', (j) => j.state === 'running');
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const subject = JobSubjects.tasks(job.tenant, job.id);
      const ask = async (body: Uint8Array) => decode<TaskReply>((await nc.request(subject, body, { timeout: 5000 })).data);
      const garbled = await ask(encode({ requestId: 'r', hostId: 'h', index: -1, failed: 'x' }));
      expect(garbled).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/^malformed TaskRequest: /) } });
      const negativeStart = await ask(encode({ requestId: 'r', hostId: 'h', index: 0, failed: [], startMs: -5 }));
      expect(negativeStart).toMatchObject({ ok: false, error: { code: 'bad_request', message: expect.stringMatching(/^malformed TaskRequest: /) } });
      const stranger = await ask(encode({ requestId: `${job.id}.1.forged`, hostId: 'host-1', index: 0, failed: [{ task: 3, error: { code: 'guest_trap', message: 'forged' } }] }));
      expect(stranger).toEqual({ ok: true, tasks: [], end: true });
    } finally {
      await nc.close();
    }
    const done = await finishedJob(api, job.id);
    expect(done.tasks).toMatchObject({ done: 20, failures: 0 });
    expect((await result(done)).equals(expectedReduce(20))).toBe(true);
    // The clones that ran say when they started (their asks carried it).
    const ran = done.clonesDetail.filter((c) => c.host !== undefined);
    expect(ran.length).toBeGreaterThan(0);
    for (const c of ran) expect(c.startMs).toBeGreaterThanOrEqual(0);
  });

  it('refused - tasks with a module that exports no run_task, or inputs with tasks, is a 400 saying why', async () => {
    const refused = await json<{ error: { code: string; message: string } }>(await api('POST', '/v1/jobs', { function: 'no-tasks', clones: 2, tasks: 4 }), 400);
    expect(refused.error.message).toMatch(/exports no run_task\(task, tasks\)/);
    const both = await json<{ error: { message: string } }>(await api('POST', '/v1/jobs', { function: 'tasks', clones: 2, tasks: 4, inputs: [b64('a'), b64('b')] }), 400);
    expect(both.error.message).toMatch(/"inputs" is for the static split/);
    const tooMany = await api('POST', '/v1/jobs', { function: 'tasks', clones: 2, tasks: 65_537 });
    expect(tooMany.status).toBe(400);
    await tooMany.body?.cancel();
  });
});
