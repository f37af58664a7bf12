// Guest rows of the fault table: each test makes the attack against a real
// fleet (LocalFleet: nats-server, a gateway, host processes) and checks the
// answer, that every host process survived (the same pids in GET /v1/hosts)
// and that the fleet serves the next calls. Time limits come from the hosts'
// environment and are small where the fault is about time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { deploy, guestProgram } from './helpers/functions.js';
import { gatewayApi, json } from './helpers/gateway-api.js';
import { b64, runJob } from './helpers/jobs.js';
import { wat } from './helpers/wat.js';


/** A function whose `init` never returns. */
const ENDLESS_INIT = wat(`(module
  (memory (export "memory") 1 1)
  (func (export "init") (loop $forever (br $forever)))
  (func (export "handle") (result i32) (i32.const 0)))`);

const MAX_PAGES = 16384; // 1 GiB: the platform's default cap (FLURRY_MAX_GUEST_MEMORY)

/**
 * A memory growth bomb: grows to its declared maximum of 1 GiB in one step,
 * writes every 4 KiB page (so the memory is really used, not only reserved),
 * then tries to grow beyond it, by a page and by 4 GiB. Both must fail (-1);
 * it then traps with `unreachable`. Any other ending returns a status that
 * says what went wrong: 2 the growth to the maximum failed, 3 growth beyond
 * the maximum succeeded.
 */
const GROWTH_BOMB = wat(`(module
  (memory (export "memory") 1 ${MAX_PAGES})
  (func $bomb (result i32) (local $p i32) (local $end i32)
    (if (i32.eq (memory.grow (i32.sub (i32.const ${MAX_PAGES}) (memory.size))) (i32.const -1)) (then (return (i32.const 2))))
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done (loop $touch
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (i32.store8 (local.get $p) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br $touch)))
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 3))))
    (if (i32.ne (memory.grow (i32.const 65536)) (i32.const -1)) (then (return (i32.const 3))))
    unreachable)
  (func (export "handle") (result i32) (call $bomb))
  (func (export "run") (param i32 i32) (result i32) (call $bomb)))`);

/** Aborts (AssemblyScript's `env.abort`) with a message of 10 MiB: 5 Mi UTF-16 characters, its byte length just before it. */
const HUGE_ABORT = wat(`(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 161 161)
  (func $fail (result i32)
    (i32.store (i32.const 4) (i32.const 10485760))
    (memory.fill (i32.const 8) (i32.const 65) (i32.const 10485760))
    (call $abort (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 0))
    (i32.const 0))
  (func (export "handle") (result i32) (call $fail))
  (func (export "run") (param i32 i32) (result i32) (call $fail)))`);

interface ErrorBody { error: { code: string; message: string } }

/** Calls, jobs and the one host of a fleet, through its gateway. */
function fleetClient(fleet: () => LocalFleet) {
  const api = gatewayApi(() => fleet().url);

  /** The platform error of a failed call: its status, code (header and body agree) and message. */
  async function failure(res: Response): Promise<{ status: number; code: string; message: string }> {
    const body = (await res.json()) as ErrorBody;
    expect(res.headers.get('x-flurry-error')).toBe(body.error.code);
    return { status: res.status, ...body.error };
  }

  /** Submits a job and waits for its end. */
  const runToEnd = (body: unknown, timeoutMs = 30_000) => runJob(api, body, { timeoutMs });

  /** Each host's pid, by host id, as the gateway lists them. */
  async function hostPids(): Promise<Record<string, number>> {
    const { hosts } = await json<{ hosts: HostRecord[] }>(await api('GET', '/v1/hosts'));
    return Object.fromEntries(hosts.map((h) => [h.id, h.pid]));
  }

  /** Every host is the same process as before, and `calls` echo calls at once (more than one host's threads) are answered. */
  async function expectServing(pids: Record<string, number>, calls = 4): Promise<void> {
    expect(await hostPids()).toEqual(pids);
    for (const h of fleet().hosts) expect(h.process.exitCode).toBeNull();
    const answers = await Promise.all(Array.from({ length: calls }, (_, i) => api('POST', `/fn/echo/after-${i}`)));
    for (const [i, res] of answers.entries()) expect((await json<{ path: string }>(res)).path).toBe(`/after-${i}`);
  }

  return { api, failure, runToEnd, hostPids, expectServing };
}

describe('guest faults - time limits', () => {
  let fleet: LocalFleet;
  const { api, failure, runToEnd, hostPids, expectServing } = fleetClient(() => fleet);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 1,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_CALL_TIMEOUT_MS: '1000', FLURRY_INIT_TIMEOUT_MS: '1000', FLURRY_HEARTBEAT_MS: '250', LOG_LEVEL: 'warn' },
      gatewayEnv: { LOG_LEVEL: 'warn' },
    });
    for (const [name, bytes] of [['echo', guestProgram('echo')], ['spin', guestProgram('spin')], ['endless-init', ENDLESS_INIT]] as const) {
      const res = await deploy(fleet.url, name, bytes);
      expect(res.status, `${name}: ${await res.clone().text()}`).toBe(201);
    }
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('infinite loop - a call and a job clone that never return are stopped at their time limit; the host stays up and serves the next call', async () => {
    const pids = await hostPids();
    // One spinning call per guest thread: both threads are stopped and replaced.
    const calls = await Promise.all([api('GET', '/fn/spin'), api('GET', '/fn/spin')]);
    for (const res of calls) expect(await failure(res)).toEqual({ status: 504, code: 'timeout', message: 'call exceeded 1000 ms' });
    await expectServing(pids);
    // A job's clones run under the job's own limit (timeoutMs) instead of the host's call limit.
    const job = await runToEnd({ function: 'spin', clones: 2, timeoutMs: 300, retries: 0 });
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('timeout');
    expect(job.errors?.map((e) => [e.index, e.code])).toEqual([[0, 'timeout'], [1, 'timeout']]);
    // The clone's own limit stopped it on its host (the coordinator's deadline comes 30 s later).
    for (const e of job.errors!) expect(e.message).toBe('call exceeded 300 ms');
    for (const c of job.clonesDetail) expect(c).toMatchObject({ state: 'failed', attempts: 1 });
    await expectServing(pids);
  });

  it('endless init - a function whose init never returns fails placement/snapshot with a clear timeout; the host stays up', async () => {
    const pids = await hostPids();
    // An HTTP function: its first call places the warm parent, whose init runs out of time.
    expect(await failure(await api('GET', '/fn/endless-init'))).toEqual({ status: 504, code: 'timeout', message: 'init exceeded 1000 ms' });
    const { hosts } = await json<{ hosts: HostRecord[] }>(await api('GET', '/v1/hosts'));
    expect(hosts[0].warm.map((w) => w.name)).not.toContain('endless-init');
    await expectServing(pids);
    // A job's parent: `spin` loops in init when its init input is "spin"; the job fails before any clone runs.
    const job = await runToEnd({ function: 'spin', clones: 2, init: b64('spin'), retries: 0 });
    expect(job.state).toBe('failed');
    expect(job.error).toEqual({ code: 'timeout', message: 'the parent could not be started: init exceeded 1000 ms' });
    expect(job.snapshotId).toBeUndefined();
    expect(job.clonesDetail.every((c) => c.attempts === 0)).toBe(true);
    await expectServing(pids);
  });
});

describe('guest faults - memory and poison', () => {
  let fleet: LocalFleet;
  const { api, failure, runToEnd, hostPids, expectServing } = fleetClient(() => fleet);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      // Two hosts: clones on the parent's host map its snapshot copy-on-write, the others page it in through userfaultfd.
      hosts: 2,
      // Generous call limits: writing 1 GiB takes a second or more on a busy machine, and these tests are not about time.
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_CALL_TIMEOUT_MS: '30000', FLURRY_HEARTBEAT_MS: '250', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_INVOKE_TIMEOUT_MS: '60000', LOG_LEVEL: 'warn' },
    });
    for (const [name, bytes] of [['echo', guestProgram('echo')], ['trap', guestProgram('trap')], ['bomb', GROWTH_BOMB]] as const) {
      const res = await deploy(fleet.url, name, bytes);
      expect(res.status, `${name}: ${await res.clone().text()}`).toBe(201);
    }
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  // test/jobs.test.ts ("trapping clones") covers some clones trapping with one retry next to clones that
  // succeed; this is the job where nothing succeeds, with more retries.
  it('poison job - fails after its retries with every reason', async () => {
    const pids = await hostPids();
    const clones = 4;
    const job = await runToEnd({ function: 'trap', clones, input: b64('all'), retries: 2 });
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('guest_trap');
    expect(job.counts).toEqual({ done: 0, failed: clones, running: 0, pending: 0 });
    expect(job.errors?.map((e) => [e.index, e.code])).toEqual([...Array(clones).keys()].map((i) => [i, 'guest_trap']));
    for (const e of job.errors!) expect(e.message).toContain(`deliberate trap in clone ${e.index}`);
    for (const c of job.clonesDetail) expect(c).toMatchObject({ state: 'failed', attempts: 3 });
    const result = await failure(await api('GET', `/v1/jobs/${job.id}/result`));
    expect(result).toMatchObject({ status: 409, code: 'conflict' });
    expect(result.message).toContain('deliberate trap');
    await expectServing(pids);
  });

  it('memory growth bomb - a guest that grows its memory to the maximum (and tries beyond) gets a clean failure, the host survives and keeps serving', async () => {
    const pids = await hostPids();
    // Twice as many calls as the parent's host has guest threads: two run at once, each writing 1 GiB, two wait their turn.
    const calls = await Promise.all(Array.from({ length: 4 }, () => api('GET', '/fn/bomb')));
    for (const res of calls) expect(await failure(res)).toEqual({ status: 502, code: 'guest_trap', message: 'unreachable' });
    await expectServing(pids);
    // Clones on both hosts: copy-on-write ones on the parent's host, userfaultfd-paged ones on the other (their
    // grown pages lie past the registration, so the kernel zero-fills them as for any anonymous memory).
    const job = await runToEnd({ function: 'bomb', clones: 4, retries: 0 }, 90_000);
    expect(job.state).toBe('failed');
    expect(job.errors?.map((e) => [e.index, e.code, e.message])).toEqual([...Array(4).keys()].map((i) => [i, 'guest_trap', 'unreachable']));
    expect(new Set(job.clonesDetail.map((c) => c.host)).size).toBe(2);
    await expectServing(pids);
  }, 150_000);
});

describe('guest faults - replies the broker would refuse', () => {
  let fleet: LocalFleet;
  const { api, failure, runToEnd, hostPids, expectServing } = fleetClient(() => fleet);

  beforeAll(async () => {
    // NATS's default max_payload (1 MiB), under the hosts' output cap (4 MiB): the host lowers its cap to fit.
    fleet = await LocalFleet.start({
      hosts: 1,
      natsMaxPayloadBytes: 1024 * 1024,
      hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_MAX_BODY: '512KiB', LOG_LEVEL: 'warn' },
    });
    for (const [name, bytes] of [['echo', guestProgram('echo')], ['big-output', guestProgram('big-output')], ['huge-abort', HUGE_ABORT]] as const) {
      const res = await deploy(fleet.url, name, bytes);
      expect(res.status, `${name}: ${await res.clone().text()}`).toBe(201);
    }
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  it('huge trap message - a guest that aborts with a 10 MiB message gets guest_trap, its message cut to 4 KiB; the host stays up', async () => {
    const pids = await hostPids();
    const res = await api('GET', '/fn/huge-abort');
    const f = await failure(res);
    expect(f.status).toBe(502);
    expect(f.code).toBe('guest_trap');
    // Bytes 0x41 0x41 read as UTF-16LE: 5 Mi characters U+4141.
    expect(f.message).toMatch(/^abort: \u4141{4089}… \(\d+ more characters\)$/);
    const job = await runToEnd({ function: 'huge-abort', clones: 2, retries: 0 });
    expect(job.errors?.map((e) => e.code)).toEqual(['guest_trap', 'guest_trap']);
    expect(job.errors!.every((e) => e.message.length < 8192)).toBe(true);
    await expectServing(pids);
  });

  it('output past max_payload - an answer larger than the broker takes is output_limit; the host stays up and serves', async () => {
    const pids = await hostPids();
    // Over the lowered cap (1 MiB less the envelope's room), under the configured 4 MiB.
    const f = await failure(await api('GET', `/fn/big-output?bytes=${1024 * 1024}`));
    expect(f).toMatchObject({ status: 502, code: 'output_limit' });
    // Just under the lowered cap: answered whole.
    const ok = await api('GET', `/fn/big-output?bytes=${512 * 1024}`);
    expect(ok.status).toBe(200);
    expect((await ok.arrayBuffer()).byteLength).toBe(512 * 1024);
    await expectServing(pids);
  });
});
