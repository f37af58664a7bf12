/**
 * `npm run bench -- migrate [--guest-mib 256] [--written-pct 10] [--rate 100] [--churn-mib-per-s 4] [--baseline-s 5] [--pace-mib-s 0] [--json]`:
 * a 3-host LocalFleet, a `room` service whose instance is booted with the
 * init input `{"ballastMiB": --guest-mib}` (that much state in its memory), a
 * client sending `/say` at a steady --rate through /svc/room (open loop: a
 * request every 1/rate s whether or not the last one was answered) and a
 * second one sending `/churn` 20 times a second, rewriting
 * --churn-mib-per-s MiB of the ballast a second (the writable working set).
 * First the same load runs --baseline-s seconds with no migration (the
 * clients' baseline latency); then the instance rewrites ballast until it
 * has written --written-pct % of it since it was forked (its parent holds the
 * rest: 10, the case the target is judged on; 100, every page its own, as
 * before); then the instance is migrated with pre-copy
 * (the hosts' defaults; --pace-mib-s: round 0 at that rate, later rounds
 * paced as Clark et al.), then back with stop-and-copy only (maxRounds 0: stop
 * first, copy all memory while paused) as the baseline of the migration.
 * Downtime is the longest gap between answers to `/say` while the migration
 * runs, and the pause as the source host measured it (with its parts); what
 * clients feel is the p99 latency of the `/say` requests sent while it runs,
 * against the baseline's; bytes sent are set against the instance's size,
 * beside what it had written since its fork when the migration began.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrationDowntime } from '@flurry/core';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { round, summarize } from './stats.js';
import { option } from './options.js';

interface Report {
  source: string; target: string; mode: string; rounds: { pages: number; bytes: number; ms: number; paceBytesPerS?: number; waitedMs?: number }[];
  stopReason: string; finalPages: number; downtimeMs: number; totalMs: number; totalBytes: number; forwarded: number; placementMs: number; memoryBytes: number;
  downtime: MigrationDowntime;
  fromParent?: boolean;
  prepareMs?: number;
  pageStream?: boolean;
}

/** One of the slowest /say requests sent while a migration ran: where its time went. */
interface SlowSay {
  /** Sent, from the start of the migration. */
  sentAtMs: number;
  latencyMs: number;
  /** The host that answered (x-flurry-host): the source, or the target once the instance moved. */
  by: 'source' | 'target' | 'other';
  /** The guest's own time on that host (x-flurry-duration-ms): the rest is waiting (held, queued, hops). */
  guestMs: number;
}

/** What the clients saw while something ran: the longest gap between answers to /say and the p99 latency of those sent meanwhile. */
interface ClientFigures {
  clientGapMs: number;
  /** When the longest gap began, from the start (to place it among the rounds, the stop and the commit). */
  gapAtMs: number;
  clientP99Ms: number;
  /** /say requests sent meanwhile. */
  sent: number;
  failed: number;
  /** The slowest /say requests sent meanwhile, slowest first. */
  slowest: SlowSay[];
  /** The guest's own time of the first /say requests the target answered, in order (a moved instance's first calls). */
  targetFirstGuestMs: number[];
  /** Every answer to a /say, ms from the start, in order, and each /say's send time and latency (for the pause's figures). */
  answers: number[];
  says: { sentAtMs: number; latencyMs: number }[];
}

interface Figures extends ClientFigures {
  label: string;
  hostPauseMs: number;
  pause: Report['downtime'];
  totalMs: number;
  /** Paced rounds: `paceMiBPerS` the rate each was sent at. */
  rounds: { pages: number; ms: number; paceMiBPerS?: number }[];
  finalPages: number;
  bytes: number;
  /** Bytes sent / the instance's memory. */
  bytesVsSize: number;
  stopReason: string;
  /** Round 0 sent only what differs from the parent. */
  fromParent: boolean;
  /** The pages went on the hosts' page stream, not through the broker. */
  pageStream: boolean;
  /** Before round 0: the parent's digest and the target's prepare. */
  prepareMs: number;
  /** Ballast bytes rewritten since the fork when the migration began, against the instance's memory. */
  writtenVsSize: number;
  /** When the pause began, from the start: the migration's answer less the placement write and the pause (the source let go about a hop before the answer), to place the slowest requests. */
  pauseAtMs: number;
  /** Requests the source held in the pause (handed to the target). */
  held: number;
  /** The longest gap between two answers to /say that overlaps the host's pause: how long the pause's end kept clients waiting. */
  pauseGapMs: number;
  /** The latency of each /say sent during the host's pause (held, then answered by the target). */
  pauseSayMs: number[];
}

const CHURN_EVERY_MS = 50;
const MiB = 1024 * 1024;

type Api = (method: string, path: string, body?: unknown) => Promise<Response>;

/** A host other than the instance's that lists a service parent warm (waited for up to 60 s), or undefined. */
async function standbyParent(api: Api): Promise<string | undefined> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const svc = ((await (await api('GET', '/v1/services/room')).json()) as { service: { instances: { host: string }[] } }).service;
    const hosts = ((await (await api('GET', '/v1/hosts')).json()) as { hosts: { id: string; serviceParents?: unknown[] }[] }).hosts;
    const other = hosts.find((h) => h.id !== svc.instances[0]?.host && (h.serviceParents ?? []).length > 0);
    if (other) return other.id;
    await new Promise((res) => setTimeout(res, 250));
  }
  return undefined;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const guestMiB = option(args, 'guest-mib', 256);
  const rate = option(args, 'rate', 100);
  const churnMiBPerS = option(args, 'churn-mib-per-s', 4);
  const baselineS = option(args, 'baseline-s', 5);
  const writtenPct = option(args, 'written-pct', 10);
  const paceMiBPerS = option(args, 'pace-mib-s', 0);
  /** Round 0's longest wait before a slice for the instance's requests (the hosts' default unless given; 0: none). */
  const yieldMaxMs = args.includes('--yield-max-ms') ? option(args, 'yield-max-ms', 0) : undefined;
  if (writtenPct < 0 || writtenPct > 100) throw new Error('--written-pct must be from 0 to 100');
  if (rate <= 0) throw new Error('--rate must be above 0');
  if (baselineS <= 0) throw new Error('--baseline-s must be above 0');
  const churnBytes = Math.round((churnMiBPerS * MiB * CHURN_EVERY_MS) / 1000);
  const quiet = args.includes('--quiet');
  const say = (s: string) => {
    if (!quiet) console.log(s);
  };
  const fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: '2', FLURRY_INIT_TIMEOUT_MS: '120000', FLURRY_MIGRATION_PACE_MIB_S: String(paceMiBPerS), ...(yieldMaxMs !== undefined ? { FLURRY_MIGRATION_YIELD_MAX_MS: String(yieldMaxMs) } : {}) },
    // Stop-and-copy pauses for seconds: requests must wait it out, not time out at the gateway's default 15 s,
    // nor be refused for the hundreds the open-loop clients have in flight meanwhile (the tenant's 64 calls in flight).
    gatewayEnv: { LOG_LEVEL: 'warn', FLURRY_INVOKE_TIMEOUT_MS: '120000', FLURRY_QUOTA_CONCURRENT_CALLS: '0' },
  });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${fleet.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/room`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions/build/room.wasm')) });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const init = Buffer.from(JSON.stringify({ ballastMiB: guestMiB })).toString('base64');
    const created = await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1, init });
    if (created.status !== 201) throw new Error(`service: ${await created.text()}`);
    const joined = await api('POST', '/svc/room/join', { name: 'ada' });
    if (!joined.ok) throw new Error(`join: ${await joined.text()}`);
    // The controller keeps a standby parent where the instance would migrate to: measured once it is warm, as a
    // service that has run a while has one (its boot is not the migration's, nor the baseline's).
    const standbyAfter = performance.now();
    const standby = await standbyParent(api);
    say(`migrate: ${standby ? `standby parent warm on host ${standby} after ${((performance.now() - standbyAfter) / 1000).toFixed(1)} s` : 'no standby parent (the target boots the parent in the migration)'}`);
    /** Ballast bytes the instance rewrote since its fork (its /churn total; the cursor wraps at the ballast's end). */
    const churned = async () => Math.min(guestMiB * MiB, ((await (await api('GET', '/svc/room/state')).json()) as { churned: number }).churned);
    /** Rewrites ballast until --written-pct % of it is the instance's own (the baseline's load rewrote some already). */
    const writeOwn = async () => {
      for (let done = await churned(); done < (guestMiB * MiB * writtenPct) / 100; done += 16 * MiB) {
        const r = await api('POST', '/svc/room/churn', { bytes: Math.min(16 * MiB, Math.ceil((guestMiB * MiB * writtenPct) / 100) - done) });
        if (!r.ok) throw new Error(`churn: ${await r.text()}`);
      }
    };
    say(`migrate: room instance with ${guestMiB} MiB of ballast, ${writtenPct}% of it rewritten since its fork before the migrations, /say at ${rate} req/s, /churn of ${(churnBytes / 1024).toFixed(0)} KiB every ${CHURN_EVERY_MS} ms (${churnMiBPerS} MiB/s)`);

    /**
     * Runs the client load, `during` after 1 s of it (given the ballast bytes the load's /churn rewrote by then),
     * and 500 ms more; what the clients saw while `during` ran.
     */
    const underLoad = async <T>(during: (churnedByLoad: number) => Promise<T>, hosts?: { source: string; target: () => string | undefined }): Promise<{ result: T; clients: ClientFigures; errors: string[]; startedAt: number }> => {
      let stop = false;
      let churnedByLoad = 0;
      let failed = 0;
      const errors: string[] = [];
      const fail = (why: string) => {
        failed++;
        if (errors.length < 3) errors.push(why);
      };
      /** Each /say's send and answer times, in the order sent. */
      const says: { sentAt: number; answeredAt?: number; host?: string; guestMs?: number }[] = [];
      const pending: Promise<void>[] = [];
      const send = (path: string, body: unknown, onOk?: (r: Response) => void) =>
        pending.push(
          api('POST', `/svc/room${path}`, body)
            .then(async (r) => {
              const text = await r.text();
              if (r.ok) onOk?.(r);
              else fail(`${path} ${r.status} ${text}`);
            })
            .catch((err: unknown) => fail(`${path} ${(err as Error).message}${(err as Error).cause ? `: ${String((err as Error).cause)}` : ''}`)),
        );
      const every = async (periodMs: number, fire: () => void) => {
        let next = performance.now();
        while (!stop) {
          fire();
          next += periodMs;
          const wait = next - performance.now();
          if (wait > 0) await new Promise((res) => setTimeout(res, wait));
        }
      };
      const clients = Promise.all([
        every(1000 / rate, () => {
          const say: (typeof says)[number] = { sentAt: performance.now() };
          says.push(say);
          send('/say', { name: 'ada', text: 'hi' }, (r) => {
            say.answeredAt = performance.now();
            say.host = r.headers.get('x-flurry-host') ?? undefined;
            say.guestMs = Number(r.headers.get('x-flurry-duration-ms') ?? NaN);
          });
        }),
        churnBytes > 0 ? every(CHURN_EVERY_MS, () => send('/churn', { bytes: churnBytes }, () => (churnedByLoad += churnBytes))) : Promise.resolve(),
      ]);
      await new Promise((res) => setTimeout(res, 1000));
      const started = performance.now();
      let ended = started;
      let result: T;
      try {
        result = await during(churnedByLoad);
      } finally {
        ended = performance.now();
        await new Promise((res) => setTimeout(res, 500));
        stop = true;
        await clients;
        await Promise.all(pending);
      }
      // The longest gap between answers from the start to the end (plus one period); the latency of the /say requests sent meanwhile.
      const answered = says.flatMap((x) => (x.answeredAt === undefined ? [] : [x.answeredAt])).sort((a, b) => a - b);
      let gap = 0;
      let gapAt = 0;
      for (let i = 1; i < answered.length; i++) {
        if (answered[i]! >= started && answered[i - 1]! <= ended + 1000 / rate && answered[i]! - answered[i - 1]! > gap) [gap, gapAt] = [answered[i]! - answered[i - 1]!, answered[i - 1]! - started];
      }
      const meanwhile = says.filter((x) => x.sentAt >= started && x.sentAt <= ended);
      const latencies = meanwhile.flatMap((x) => (x.answeredAt === undefined ? [] : [x.answeredAt - x.sentAt]));
      const target = hosts?.target();
      const by = (host: string | undefined): SlowSay['by'] => (host === hosts?.source ? 'source' : host !== undefined && host === target ? 'target' : 'other');
      const slowest = meanwhile
        .flatMap((x) => (x.answeredAt === undefined ? [] : [{ sentAtMs: round(x.sentAt - started, 0), latencyMs: round(x.answeredAt - x.sentAt, 1), by: by(x.host), guestMs: round(x.guestMs ?? NaN, 2) }]))
        .sort((a, b) => b.latencyMs - a.latencyMs)
        .slice(0, 5);
      const targetFirstGuestMs = says
        .filter((x) => x.answeredAt !== undefined && x.sentAt >= started && target !== undefined && x.host === target)
        .sort((a, b) => a.answeredAt! - b.answeredAt!)
        .slice(0, 5)
        .map((x) => round(x.guestMs ?? NaN, 2));
      const answers = answered.map((t) => t - started);
      const sayTimes = meanwhile.flatMap((x) => (x.answeredAt === undefined ? [] : [{ sentAtMs: x.sentAt - started, latencyMs: x.answeredAt - x.sentAt }]));
      return { startedAt: started, result, clients: { clientGapMs: round(gap, 1), gapAtMs: round(gapAt, 0), clientP99Ms: round(summarize(latencies).p99Ms, 2), sent: meanwhile.length, failed, slowest, targetFirstGuestMs, answers, says: sayTimes }, errors };
    };

    const baseline = await underLoad(() => new Promise((res) => setTimeout(res, baselineS * 1000)));
    say(`  ${'no migration'.padEnd(14)} ${baselineS} s of the same load: client p99 ${baseline.clients.clientP99Ms} ms, longest client gap ${baseline.clients.clientGapMs} ms, failed ${baseline.clients.failed} (${baseline.clients.sent} /say sent)`);
    for (const e of baseline.errors) say(`    failed: ${e}`);

    const once = async (label: string, opts: Record<string, unknown>): Promise<Figures> => {
      const svc = ((await (await api('GET', '/v1/services/room')).json()) as { service: { instances: { id: string; host: string }[] } }).service;
      const { id, host: sourceHost } = svc.instances[0]!;
      let targetHost: string | undefined;
      // Read before the load: /state hashes the whole ballast in the instance, which would stall its clients in the window measured.
      const churnedBefore = await churned();
      let written = 0;
      let answeredAt = 0;
      const { result: body, clients, errors, startedAt } = await underLoad(async (churnedByLoad) => {
        written = Math.min(guestMiB * MiB, churnedBefore + churnedByLoad);
        const res = await api('POST', `/v1/instances/${id}/migrate`, opts);
        answeredAt = performance.now();
        const answer = { status: res.status, ...((await res.json()) as { migration?: Report; error?: unknown }) };
        targetHost = answer.migration?.target;
        return answer;
      }, { source: sourceHost, target: () => targetHost });
      if (!body.migration) throw new Error(`migrate ${label}: ${body.status} ${JSON.stringify(body)}`);
      const m = body.migration;
      // The source let go about when the gateway, its placement written, answered (less a hop): placed from that
      // end, not from the request's start, which the gateway's migrating mark delays before the source begins.
      const pauseEnd = answeredAt - startedAt - m.placementMs;
      const pauseAt = pauseEnd - m.downtimeMs;
      const f: Figures = {
        label, ...clients, hostPauseMs: round(m.downtimeMs, 2),
        pause: Object.fromEntries(Object.entries(m.downtime).map(([k, v]) => [k, round(v, 2)])) as Report['downtime'],
        totalMs: round(m.totalMs, 1), rounds: m.rounds.map((x) => ({ pages: x.pages, ms: round(x.ms, 1), ...(x.paceBytesPerS ? { paceMiBPerS: round(x.paceBytesPerS / MiB, 1) } : {}), ...(x.waitedMs !== undefined ? { waitedMs: round(x.waitedMs, 1) } : {}) })), finalPages: m.finalPages,
        bytes: m.totalBytes, bytesVsSize: round(m.totalBytes / m.memoryBytes, 3), stopReason: m.stopReason,
        fromParent: m.fromParent === true, pageStream: m.pageStream === true, prepareMs: round(m.prepareMs ?? 0, 1), writtenVsSize: round(written / m.memoryBytes, 3), pauseAtMs: round(pauseAt, 0),
        held: m.forwarded,
        pauseGapMs: 0,
        pauseSayMs: clients.says.filter((x) => x.sentAtMs >= pauseAt && x.sentAtMs <= pauseEnd).map((x) => round(x.latencyMs, 1)),
      };
      const [from, to] = [pauseAt, pauseEnd];
      for (let i = 1; i < clients.answers.length; i++) {
        const [a, b] = [clients.answers[i - 1]!, clients.answers[i]!];
        if (b >= from && a <= to) f.pauseGapMs = Math.max(f.pauseGapMs, round(b - a, 1));
      }
      const mibPerS = (x: { bytes: number; ms: number }) => (x.ms > 0 ? ((x.bytes / MiB) * 1000) / x.ms : 0).toFixed(0);
      say(`  ${label.padEnd(14)} ${m.source}->${m.target} (${m.mode}): client p99 ${f.clientP99Ms} ms, longest client gap ${f.clientGapMs} ms at +${f.gapAtMs} ms (the pause began at +${f.pauseAtMs} ms), host pause ${f.hostPauseMs} ms ` +
        `(stop ${f.pause.stopMs} [wait ${f.pause.waitMs}, read ${f.pause.readMs}], send ${f.pause.sendMs}, commit ${f.pause.commitMs} [there ${f.pause.commitOutMs ?? '?'}, target ${f.pause.targetCommitMs}, its thread ${f.pause.targetApplyMs}, back ${f.pause.commitBackMs ?? '?'}], release ${f.pause.releaseMs}), ` +
        `total ${f.totalMs} ms (prepare ${f.prepareMs} ms), rounds ${m.rounds.map((r) => `${r.pages}p/${round(r.ms, 1)}ms@${mibPerS(r)}MiB/s${r.paceBytesPerS ? ` (paced ${round(r.paceBytesPerS / MiB, 0)})` : ''}${r.waitedMs ? ` (waited ${round(r.waitedMs, 1)} ms for its requests)` : ''}`).join(' ') || 'none'}, final ${m.finalPages} pages, stop ${m.stopReason}, ` +
        `${(f.bytes / MiB).toFixed(1)} MiB sent of ${(m.memoryBytes / MiB).toFixed(1)} MiB (${f.bytesVsSize}x; ${f.writtenVsSize}x written since the fork, ${f.fromParent ? 'round 0 from the parent' : 'every page'}), ${m.forwarded} held, placement update ${round(m.placementMs, 1)} ms, failed ${f.failed} (${f.sent} /say sent)`);
      say(`    slowest /say (sent at +ms: latency, answered by, guest ms): ${f.slowest.map((x) => `+${x.sentAtMs}: ${x.latencyMs} ms ${x.by} ${x.guestMs}`).join('; ')}; the target's first answers' guest ms: ${f.targetFirstGuestMs.join(', ')}; around the pause: longest gap ${f.pauseGapMs} ms, /say sent in it ${f.pauseSayMs.join(', ') || 'none'} ms`);
      for (const e of errors) say(`    failed: ${e}`);
      return f;
    };
    await writeOwn();
    const pre = await once('pre-copy', {});
    const sc = await once('stop-and-copy', { maxRounds: 0 });
    const ratio = (a: number, b: number, digits = 1) => (b > 0 ? round(a / b, digits) : null);
    const base = baseline.clients.clientP99Ms;
    say(`client p99 / no migration: pre-copy ${ratio(pre.clientP99Ms, base, 2)}x, stop-and-copy ${ratio(sc.clientP99Ms, base, 2)}x; bytes sent / instance size: pre-copy ${pre.bytesVsSize}, stop-and-copy ${sc.bytesVsSize}`);
    say(`stop-and-copy / pre-copy: client gap ${ratio(sc.clientGapMs, pre.clientGapMs)}x, host pause ${ratio(sc.hostPauseMs, pre.hostPauseMs)}x, total ${ratio(sc.totalMs, pre.totalMs)}x`);
    return {
      bench: 'migrate', guestMiB, writtenPct, rate, churnMiBPerS, baselineS, paceMiBPerS, ...(yieldMaxMs !== undefined ? { yieldMaxMs } : {}), standby: standby !== undefined,
      downtimeMs: pre.clientGapMs, hostPauseMs: pre.hostPauseMs, clientP99Ms: pre.clientP99Ms, baselineClientP99Ms: base, clientP99Ratio: ratio(pre.clientP99Ms, base, 2),
      bytesVsSize: pre.bytesVsSize, writtenVsSize: pre.writtenVsSize, fromParent: pre.fromParent, pageStream: pre.pageStream, stopCopyPageStream: sc.pageStream, prepareMs: pre.prepareMs, pause: pre.pause, totalMs: pre.totalMs, rounds: pre.rounds, finalPages: pre.finalPages,
      stopReason: pre.stopReason, bytes: pre.bytes, pauseAtMs: pre.pauseAtMs, held: pre.held, pauseGapMs: pre.pauseGapMs, pauseSayMs: pre.pauseSayMs, slowest: pre.slowest, targetFirstGuestMs: pre.targetFirstGuestMs, failed: baseline.clients.failed + pre.failed + sc.failed,
      stopCopyDowntimeMs: sc.clientGapMs, stopCopyHostPauseMs: sc.hostPauseMs, stopCopyClientP99Ms: sc.clientP99Ms, stopCopyTotalMs: sc.totalMs, stopCopyBytes: sc.bytes, stopCopyBytesVsSize: sc.bytesVsSize,
      downtimeRatio: ratio(sc.clientGapMs, pre.clientGapMs), hostPauseRatio: ratio(sc.hostPauseMs, pre.hostPauseMs),
    };
  } finally {
    await fleet.stop();
  }
}
