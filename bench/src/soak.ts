/**
 * `npm run bench -- soak [--minutes 3] [--seed 1] [--hosts 3] [--clients 4] [--json]`
 *
 * The chaos soak (docs/reliability.md): a LocalFleet under steady traffic of
 * three kinds at once, while faults strike at seeded random moments.
 *
 * Traffic:
 * - HTTP function calls: --clients loops calling `echo` with a body of their
 *   own; an answer must reflect that body.
 * - Fork-join jobs, one after another, through the SDK (its retries and
 *   resumed event streams included): `pattern`, 8 clones; a job is correct
 *   when it ends done and its reduce checks every clone.
 * - A stateful service: a `room` instance taking `/say` requests without
 *   pause, every outcome kept in a RoomLedger, and migrated to another host
 *   every 15-25 s.
 *
 * Faults, one at a time, 12-25 s apart, their kinds in a seeded order:
 * - kill: SIGKILL a host that holds no service instance (an instance's memory
 *   lives on its host only: a dead host takes it, which is documented, not
 *   measured here), start it again 2-5 s later;
 * - pause: SIGSTOP any host for 5-9 s (past its heartbeat TTL, within the
 *   instance's grace), then SIGCONT;
 * - nats: restart nats-server (same port and store) after 1-3 s down.
 * After each, the time to recover: from the fault's end until every host is
 * listed again, a call is answered and the service answers.
 *
 * Baseline: the same traffic before the first fault (12-25 s of it):
 * requests per second and p50/p99 latency there and with faults, and their
 * ratios.
 *
 * Reported: requests made (calls and service requests), failed (by status),
 * failures that were not 503/429 with Retry-After or came outside a fault
 * (from its start to its recovery), requests that hung (no answer in 30 s),
 * lost (a job accepted and then gone or never ended, an acknowledged service
 * request the room does not hold, or a message it holds that nobody sent),
 * jobs and jobs correct, migrations, faults and the longest recovery.
 * Target: lost 0, every job correct, failures only 503/429 with Retry-After
 * while a fault lasts.
 */
import { LocalFleet, RoomLedger, repoRoot, seededRandom, type RoomMessage, type RunningService } from '@flurry/infra';
import { Flurry, type JobRecord } from '@flurry/sdk';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { round, summarize } from './stats.js';
import { option } from './options.js';


type FaultKind = 'kill' | 'pause' | 'nats';

interface Fault {
  kind: FaultKind;
  target?: string;
  /** Seconds into the run. */
  atS: number;
  /** From the fault's start to its end (restart, resume, broker back). */
  durationMs: number;
  /** From its end until the fleet answers everything again. */
  recoveryMs: number;
}

interface Window {
  from: number;
  to: number;
}

const TTL_S = 3;
const HANG_MS = 30_000;
const JOB_CLONES = 8;
const JOB_DEADLINE_MS = 5 * 60_000;

class Tally {
  requests = 0;
  ok = 0;
  hung = 0;
  wrong = 0;
  readonly failedByStatus = new Map<number, number>();
  readonly failures: { at: number; status: number; retryAfter: boolean; what: string }[] = [];
  /** When each answered request ended and how long it took (for the baseline against the faults). */
  readonly latencies: { at: number; ms: number }[] = [];

  answer(res: Response, what: string, sentAt: number): void {
    this.requests++;
    this.latencies.push({ at: Date.now(), ms: Date.now() - sentAt });
    if (res.ok) {
      this.ok++;
      return;
    }
    this.failedByStatus.set(res.status, (this.failedByStatus.get(res.status) ?? 0) + 1);
    this.failures.push({ at: Date.now(), status: res.status, retryAfter: /^\d+$/.test(res.headers.get('retry-after') ?? ''), what });
  }
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const o = { minutes: option(args, 'minutes', 3), seed: option(args, 'seed', 1), hosts: option(args, 'hosts', 3), clients: option(args, 'clients', 4) };
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  // Faults draw from their own generator, so that a seed gives the same fault schedule whatever the traffic did.
  const random = seededRandom(o.seed);
  const between = (lo: number, hi: number) => lo + random() * (hi - lo);
  const workRandom = seededRandom(o.seed + 0x9e3779b9);
  say(`soak: ${o.minutes} min, seed ${o.seed}, ${o.hosts} hosts; calls from ${o.clients} clients, jobs of ${JOB_CLONES} clones, a room service with migrations; faults: host killed, host paused, nats-server restarted`);

  const fleet = await LocalFleet.start({
    hosts: o.hosts,
    hostEnv: { FLURRY_GUEST_THREADS: '2', FLURRY_HEARTBEAT_MS: '250', FLURRY_HOST_TTL_S: String(TTL_S), LOG_LEVEL: 'warn' },
    gatewayEnv: { FLURRY_HOST_TTL_S: String(TTL_S), FLURRY_CONSOLIDATE_MS: '0', LOG_LEVEL: 'warn' },
  });
  const started = Date.now();
  const calls = new Tally();
  const service = new Tally();
  const ledger = new RoomLedger();
  const faults: Fault[] = [];
  const windows: Window[] = [];
  const jobs = { submitted: 0, correct: 0, failed: [] as string[], lost: [] as string[], current: undefined as string | undefined };
  const migrations = new Map<number, number>();
  let stopping = false;
  // A host is never killed during a migration: its source or target would take the instance's memory with it.
  const exclusive = { killing: false, migrating: Promise.resolve() };
  try {
    for (const name of ['echo', 'pattern', 'room']) {
      const res = await fetch(`${fleet.url}/v1/functions/${name}`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions', 'build', `${name}.wasm`)) });
      if (!res.ok) throw new Error(`deploying ${name}: ${res.status} ${await res.text()}`);
    }
    const flurry = new Flurry({ url: fleet.url, retries: { count: 20, withinMs: 120_000 } });
    await flurry.services.create({ name: 'soak', function: 'room', min: 1, max: 1 });
    await untilOk(() => fetch(`${fleet.url}/svc/soak/join`, { method: 'POST', body: JSON.stringify({ name: 'ada' }), headers: { 'content-type': 'application/json' } }));

    const endAt = started + o.minutes * 60_000;
    const loops: Promise<void>[] = [];
    // HTTP function calls.
    for (let c = 0; c < o.clients; c++) {
      loops.push((async () => {
        for (let k = 0; !stopping; k++) {
          const body = `c${c}-${k}`;
          const sentAt = Date.now();
          const res = await fetch(`${fleet.url}/fn/echo/soak`, { method: 'POST', body, signal: AbortSignal.timeout(HANG_MS) }).catch((err: unknown) => err as Error);
          if (res instanceof Error) {
            calls.requests++;
            calls.hung++;
            continue;
          }
          calls.answer(res, `call ${body}`, sentAt);
          const text = await res.text();
          if (res.ok && (JSON.parse(text) as { body?: string }).body !== body) calls.wrong++;
          if (!res.ok) await pause(res);
        }
      })());
    }
    // The service's client.
    loops.push((async () => {
      for (let k = 0; !stopping; k++) {
        const text = `s-${k}`;
        const sentAt = Date.now();
        const res = await fetch(`${fleet.url}/svc/soak/say`, {
          method: 'POST', body: JSON.stringify({ name: 'ada', text }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(HANG_MS),
        }).catch((err: unknown) => err as Error);
        if (res instanceof Error) {
          service.requests++;
          service.hung++;
          ledger.uncertain(text);
          continue;
        }
        service.answer(res, `say ${text}`, sentAt);
        const answer = (await res.json().catch(() => ({}))) as { seq?: number };
        if (res.ok && typeof answer.seq === 'number') ledger.acknowledge(text, answer.seq);
        else {
          ledger.uncertain(text);
          await pause(res);
        }
      }
    })());
    // Migrations of the service's instance.
    loops.push((async () => {
      while (!stopping) {
        await sleepUntil(Date.now() + 15_000 + workRandom() * 10_000, () => stopping);
        if (stopping || exclusive.killing) continue;
        const view = await fetch(`${fleet.url}/v1/services/soak`).then(async (r) => (r.ok ? ((await r.json()) as { service: { instances: { id: string }[] } }).service : undefined)).catch(() => undefined);
        const inst = view?.instances[0];
        if (!inst || exclusive.killing) continue;
        const migrating = (async () => {
          const res = await fetch(`${fleet.url}/v1/instances/${inst.id}/migrate`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5 * 60_000) }).catch(() => undefined);
          migrations.set(res?.status ?? 0, (migrations.get(res?.status ?? 0) ?? 0) + 1);
          await res?.arrayBuffer().catch(() => undefined);
          // The placement settles a moment after a migration whose answer was lost.
          await new Promise((r) => setTimeout(r, 2000));
        })();
        exclusive.migrating = migrating;
        await migrating;
      }
    })());
    // Jobs, one after another.
    loops.push((async () => {
      while (!stopping) {
        const seedOfJob = Math.floor(workRandom() * 4);
        let handle;
        try {
          handle = await flurry.jobs.submit({ function: 'pattern', clones: JOB_CLONES, init: new TextEncoder().encode(JSON.stringify({ mib: 32, seed: seedOfJob })), input: new TextEncoder().encode(JSON.stringify({ verify: 'all' })) });
        } catch {
          // Not accepted (the SDK's retries ran out during a fault): nothing was promised.
          await sleepUntil(Date.now() + 1000, () => stopping);
          continue;
        }
        jobs.submitted++;
        jobs.current = handle.id;
        const verdict = await judgeJob(flurry, handle.id);
        jobs.current = undefined;
        if (verdict === 'correct') jobs.correct++;
        else if (verdict === 'lost') jobs.lost.push(handle.id);
        else jobs.failed.push(`${handle.id}: ${verdict}`);
      }
    })());

    // Faults, one at a time, until the end.
    const order = shuffled(['kill', 'pause', 'nats'] as FaultKind[], random);
    for (let f = 0; ; f++) {
      const at = Date.now() + between(12_000, 25_000);
      if (at > endAt - 20_000) break;
      await sleepUntil(at, () => false);
      const kind = order[f % order.length]!;
      const window: Window = { from: Date.now(), to: Infinity };
      windows.push(window);
      const { target, endedAt } = await strike(kind, fleet, between, say, exclusive);
      const recoveredAt = await recovered(fleet, o.hosts);
      window.to = recoveredAt;
      const fault: Fault = { kind, target, atS: round((window.from - started) / 1000, 1), durationMs: endedAt - window.from, recoveryMs: recoveredAt - endedAt };
      faults.push(fault);
      say(`  fault ${kind}${target ? ` ${target}` : ''} at ${fault.atS} s: lasted ${fault.durationMs} ms, recovered ${fault.recoveryMs} ms after`);
    }
    await sleepUntil(endAt, () => false);
    stopping = true;
    const settled = await Promise.race([Promise.all(loops).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), JOB_DEADLINE_MS))]);
    // A job still unjudged by now never ended: lost.
    if (!settled && jobs.current) jobs.lost.push(`${jobs.current} (never ended)`);

    // The service's state against everything it acknowledged.
    const messages: RoomMessage[] = [];
    for (let since = 0; ; ) {
      const page = (await (await untilOk(() => fetch(`${fleet.url}/svc/soak/messages?since=${since}`))).json()) as { messages: RoomMessage[]; next: number };
      messages.push(...page.messages);
      if (page.messages.length === 0 || page.next === since) break;
      since = page.next;
    }
    const check = ledger.check(messages);
    const inFault = (t: number) => windows.some((w) => t >= w.from && t <= w.to);
    const allFailures = [...calls.failures, ...service.failures];
    const unexpected = allFailures.filter((f) => !((f.status === 503 || f.status === 429) && f.retryAfter) || !inFault(f.at));
    const lost = jobs.lost.length + check.lost.length + check.phantom.length + (check.contiguous ? 0 : 1);
    const failed = calls.requests - calls.ok + service.requests - service.ok;
    const failedByStatus: Record<string, number> = {};
    for (const t of [calls, service]) for (const [s, n] of t.failedByStatus) failedByStatus[s] = (failedByStatus[s] ?? 0) + n;
    const maxRecoveryMs = Math.max(0, ...faults.map((f) => f.recoveryMs));
    // The baseline: the same traffic before the first fault, against the rest of the run.
    const firstFault = windows[0]?.from ?? Date.now();
    const phase = (t: Tally, inBaseline: boolean) => {
      const picked = t.latencies.filter((l) => (l.at < firstFault) === inBaseline);
      const seconds = inBaseline ? (firstFault - started) / 1000 : (Date.now() - firstFault) / 1000;
      const s = summarize(picked.map((l) => l.ms));
      return { perSecond: round(picked.length / Math.max(seconds, 1e-3), 1), p50Ms: s.p50Ms, p99Ms: s.p99Ms };
    };
    const baseline = { calls: phase(calls, true), service: phase(service, true) };
    const underFaults = { calls: phase(calls, false), service: phase(service, false) };
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : undefined);
    say('');
    for (const kind of ['calls', 'service'] as const) {
      const b = baseline[kind];
      const f = underFaults[kind];
      say(`  ${kind}: before the first fault ${b.perSecond}/s, p50 ${b.p50Ms} ms, p99 ${b.p99Ms} ms; with faults ${f.perSecond}/s (${ratio(f.perSecond, b.perSecond)}x), p50 ${f.p50Ms} ms (${ratio(f.p50Ms, b.p50Ms)}x), p99 ${f.p99Ms} ms (${ratio(f.p99Ms, b.p99Ms)}x)`);
    }
    say(`  requests ${calls.requests + service.requests} (calls ${calls.requests}, service ${service.requests}); failed ${failed} ${JSON.stringify(failedByStatus)}; hung ${calls.hung + service.hung}; wrong answers ${calls.wrong}`);
    const described = unexpected.slice(0, 5).map((f) => ({ atS: round((f.at - started) / 1000, 1), status: f.status, retryAfter: f.retryAfter, what: f.what }));
    say(`  failures that were not 503/429 with Retry-After during a fault: ${unexpected.length}${unexpected.length ? ` (first: ${JSON.stringify(described)})` : ''}`);
    say(`  jobs ${jobs.submitted}, correct ${jobs.correct}${jobs.failed.length ? `, failed ${JSON.stringify(jobs.failed)}` : ''}${jobs.lost.length ? `, lost ${JSON.stringify(jobs.lost)}` : ''}`);
    say(`  service: ${check.acknowledged} acknowledged, ${check.unknownApplied} unknown outcomes applied, ${check.unknownDropped} not; lost ${check.lost.length}, phantom ${check.phantom.length}, seqs ${check.contiguous ? 'contiguous' : 'NOT contiguous'}`);
    say(`  migrations ${JSON.stringify(Object.fromEntries(migrations))}; faults ${faults.length}, longest recovery ${maxRecoveryMs} ms`);
    say(`  LOST: ${lost}`);
    return {
      bench: 'soak', ...o, durationS: round((Date.now() - started) / 1000, 1),
      requests: calls.requests + service.requests, calls: calls.requests, serviceRequests: service.requests,
      failed, failedByStatus, failedUnexpected: unexpected.length, hung: calls.hung + service.hung, wrongAnswers: calls.wrong,
      lost, lostDetail: { jobs: jobs.lost.length, serviceAcknowledged: check.lost.length, servicePhantom: check.phantom.length, serviceContiguous: check.contiguous },
      jobs: jobs.submitted, jobsCorrect: jobs.correct, jobsFailed: jobs.failed,
      serviceAcknowledged: check.acknowledged, serviceUnknownApplied: check.unknownApplied, serviceUnknownDropped: check.unknownDropped,
      migrations: Object.fromEntries(migrations), faults: faults.length, faultLog: faults, maxRecoveryMs,
      baseline, underFaults,
      throughputRatio: { calls: ratio(underFaults.calls.perSecond, baseline.calls.perSecond), service: ratio(underFaults.service.perSecond, baseline.service.perSecond) },
    };
  } finally {
    stopping = true;
    for (const h of fleet.hosts) h.process.kill('SIGCONT');
    await fleet.stop();
  }
}

/** A job to its end: correct (done, and its reduce checked every clone), failed (why), or lost (gone, or never ended). */
async function judgeJob(flurry: Flurry, id: string): Promise<string> {
  const deadline = Date.now() + JOB_DEADLINE_MS;
  let record: JobRecord | undefined;
  while (Date.now() < deadline) {
    try {
      record = await flurry.jobs.handle(id).wait();
      break;
    } catch (err) {
      const e = err as { name?: string; job?: JobRecord; code?: string };
      if (e.job) return `${e.job.state}: ${e.job.error?.code} ${e.job.error?.message}`;
      if (e.code === 'not_found') return 'lost';
      // The stream gave up during a fault: follow it again.
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (!record) return 'lost';
  const reduced = JSON.parse(new TextDecoder().decode((await flurry.jobs.handle(id).result()) as Uint8Array)) as { count: number; ok: boolean; failed: number[]; distinctChecksums: number };
  const good = reduced.ok && reduced.count === JOB_CLONES && reduced.failed.length === 0 && reduced.distinctChecksums === 1;
  return good ? 'correct' : `done with a wrong result: ${JSON.stringify(reduced)}`;
}

/** Strikes one fault; resolves when it has ended (the host restarted or resumed, the broker back). */
async function strike(
  kind: FaultKind, fleet: LocalFleet, between: (lo: number, hi: number) => number, say: (s: string) => void,
  exclusive: { killing: boolean; migrating: Promise<void> },
): Promise<{ target?: string; endedAt: number }> {
  // Hosts that hold the instance: by their records and by the service's placement.
  const holders = async () => {
    const { hosts } = (await (await fetch(`${fleet.url}/v1/hosts`)).json()) as { hosts: { id: string; instances?: unknown[] }[] };
    const { service } = (await (await fetch(`${fleet.url}/v1/services/soak`)).json()) as { service: { instances: { host: string }[] } };
    return new Set([...hosts.filter((h) => (h.instances?.length ?? 0) > 0).map((h) => h.id), ...service.instances.map((i) => i.host)]);
  };
  const ids = fleet.hosts.map((h) => h.ready.hostId as string);
  const pick = (from: string[]) => from[Math.floor(between(0, from.length))]!;
  switch (kind) {
    case 'kill': {
      exclusive.killing = true;
      try {
        await exclusive.migrating;
        const busy = await holders();
        const target = pick(ids.filter((id) => !busy.has(id)));
        say(`  killing ${target}`);
        processOf(fleet, target).process.kill('SIGKILL');
        await new Promise((r) => setTimeout(r, between(2000, 5000)));
        await fleet.restartHost(target);
        return { target, endedAt: Date.now() };
      } finally {
        exclusive.killing = false;
      }
    }
    case 'pause': {
      const target = pick(ids);
      say(`  pausing ${target}`);
      const proc = processOf(fleet, target);
      proc.process.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, between(5000, 9000)));
      proc.process.kill('SIGCONT');
      return { target, endedAt: Date.now() };
    }
    case 'nats':
      say('  restarting nats-server');
      await fleet.restartNats({ downMs: between(1000, 3000) });
      return { endedAt: Date.now() };
  }
}

function processOf(fleet: LocalFleet, hostId: string): RunningService {
  const p = fleet.hosts.find((h) => h.ready.hostId === hostId);
  if (!p) throw new Error(`no process for ${hostId}`);
  return p;
}

/** When every host is listed again, a call is answered and the service answers. */
async function recovered(fleet: LocalFleet, hosts: number): Promise<number> {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const ok = await Promise.all([
      fetch(`${fleet.url}/v1/hosts`).then(async (r) => r.ok && ((await r.json()) as { hosts: unknown[] }).hosts.length === hosts),
      fetch(`${fleet.url}/fn/echo/probe`, { method: 'POST', body: 'probe' }).then((r) => r.ok),
      fetch(`${fleet.url}/svc/soak/state`).then((r) => r.ok),
    ].map((p) => p.catch(() => false)));
    if (ok.every(Boolean)) return Date.now();
    if (Date.now() > deadline) throw new Error('the fleet did not recover within 5 minutes of a fault');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A client's courtesy after a refusal: wait what Retry-After asks (at most a second here, to keep measuring). */
async function pause(res: Response): Promise<void> {
  const s = Number(res.headers.get('retry-after') ?? '0');
  await new Promise((r) => setTimeout(r, Math.min(1000, Number.isFinite(s) ? s * 1000 : 0) || 100));
}

async function untilOk(req: () => Promise<Response>): Promise<Response> {
  for (let i = 0; ; i++) {
    const res = await req().catch(() => undefined);
    if (res?.ok) return res;
    if (i > 300) throw new Error(`no success: ${res?.status} ${await res?.text()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function sleepUntil(t: number, stop: () => boolean): Promise<void> {
  while (Date.now() < t && !stop()) await new Promise((r) => setTimeout(r, Math.min(250, t - Date.now())));
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
