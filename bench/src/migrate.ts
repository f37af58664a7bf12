/**
 * `npm run bench -- migrate [--guest-mib 256] [--rate 100] [--churn-mib-per-s 4] [--json]`:
 * a 3-host LocalFleet, a `room` service whose instance is booted with the
 * init input `{"ballastMiB": --guest-mib}` (that much state in its memory), a
 * client sending `/say` at a steady --rate through /svc/room (open loop: a
 * request every 1/rate s whether or not the last one was answered) and a
 * second one sending `/churn` 20 times a second, rewriting
 * --churn-mib-per-s MiB of the ballast a second (the writable working set).
 * The instance is migrated with pre-copy (defaults), then back with
 * stop-and-copy only (maxRounds 0: stop first, copy all memory while paused)
 * as the baseline. Downtime is the longest gap between answers to `/say`
 * while the migration runs, and the pause as the source host measured it
 * (with its parts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { round } from './stats.js';
import { option } from './options.js';

interface Report {
  source: string; target: string; mode: string; rounds: { pages: number; bytes: number; ms: number }[];
  stopReason: string; finalPages: number; downtimeMs: number; totalMs: number; totalBytes: number; forwarded: number; placementMs: number;
  downtime: { stopMs: number; waitMs: number; readMs: number; sendMs: number; commitMs: number; targetApplyMs: number; targetCommitMs: number; releaseMs: number };
}

interface Figures {
  label: string;
  /** Longest gap between answers to /say while the migration ran. */
  clientGapMs: number;
  hostPauseMs: number;
  pause: Report['downtime'];
  totalMs: number;
  rounds: { pages: number; ms: number }[];
  finalPages: number;
  bytes: number;
  failed: number;
  stopReason: string;
}

const CHURN_EVERY_MS = 50;
const MiB = 1024 * 1024;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const guestMiB = option(args, 'guest-mib', 256);
  const rate = option(args, 'rate', 100);
  const churnMiBPerS = option(args, 'churn-mib-per-s', 4);
  if (rate <= 0) throw new Error('--rate must be above 0');
  const churnBytes = Math.round((churnMiBPerS * MiB * CHURN_EVERY_MS) / 1000);
  const quiet = args.includes('--quiet');
  const say = (s: string) => {
    if (!quiet) console.log(s);
  };
  const fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: '2', FLURRY_INIT_TIMEOUT_MS: '120000' },
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
    // Rewritten once whole: the state that moves is the instance's own, not a copy of its parent's.
    for (let done = 0; done < guestMiB * MiB; done += 16 * MiB) {
      const r = await api('POST', '/svc/room/churn', { bytes: Math.min(16 * MiB, guestMiB * MiB - done) });
      if (!r.ok) throw new Error(`churn: ${await r.text()}`);
    }
    say(`migrate: room instance with ${guestMiB} MiB of ballast, /say at ${rate} req/s, /churn of ${(churnBytes / 1024).toFixed(0)} KiB every ${CHURN_EVERY_MS} ms (${churnMiBPerS} MiB/s)`);

    const once = async (label: string, opts: Record<string, unknown>): Promise<Figures> => {
      const svc = ((await (await api('GET', '/v1/services/room')).json()) as { service: { instances: { id: string }[] } }).service;
      const id = svc.instances[0]!.id;
      let stop = false;
      let failed = 0;
      const errors: string[] = [];
      const fail = (why: string) => {
        failed++;
        if (errors.length < 3) errors.push(why);
      };
      const answered: number[] = [];
      const pending: Promise<void>[] = [];
      const send = (path: string, body: unknown, onOk?: () => void) =>
        pending.push(
          api('POST', `/svc/room${path}`, body)
            .then(async (r) => {
              const text = await r.text();
              if (r.ok) onOk?.();
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
        every(1000 / rate, () => send('/say', { name: 'ada', text: 'hi' }, () => answered.push(performance.now()))),
        churnBytes > 0 ? every(CHURN_EVERY_MS, () => send('/churn', { bytes: churnBytes })) : Promise.resolve(),
      ]);
      await new Promise((res) => setTimeout(res, 1000));
      const started = performance.now();
      const res = await api('POST', `/v1/instances/${id}/migrate`, opts);
      const body = (await res.json()) as { migration?: Report; error?: unknown };
      const ended = performance.now();
      await new Promise((res) => setTimeout(res, 500));
      stop = true;
      await clients;
      await Promise.all(pending);
      if (!body.migration) throw new Error(`migrate ${label}: ${res.status} ${JSON.stringify(body)}`);
      const m = body.migration;
      // The longest gap between answers from the migration's start to its end (plus one period).
      let gap = 0;
      for (let i = 1; i < answered.length; i++) if (answered[i]! >= started && answered[i - 1]! <= ended + 1000 / rate) gap = Math.max(gap, answered[i]! - answered[i - 1]!);
      const f: Figures = {
        label, clientGapMs: round(gap, 1), hostPauseMs: round(m.downtimeMs, 2),
        pause: Object.fromEntries(Object.entries(m.downtime).map(([k, v]) => [k, round(v, 2)])) as Report['downtime'],
        totalMs: round(m.totalMs, 1), rounds: m.rounds.map((x) => ({ pages: x.pages, ms: round(x.ms, 1) })), finalPages: m.finalPages,
        bytes: m.totalBytes, failed, stopReason: m.stopReason,
      };
      say(`  ${label.padEnd(14)} ${m.source}->${m.target} (${m.mode}): longest client gap ${f.clientGapMs} ms, host pause ${f.hostPauseMs} ms ` +
        `(stop ${f.pause.stopMs} [wait ${f.pause.waitMs}, read ${f.pause.readMs}], send ${f.pause.sendMs}, commit ${f.pause.commitMs} [target ${f.pause.targetCommitMs}, its thread ${f.pause.targetApplyMs}], release ${f.pause.releaseMs}), ` +
        `total ${f.totalMs} ms, rounds ${f.rounds.map((r) => `${r.pages}p/${r.ms}ms`).join(' ') || 'none'}, final ${m.finalPages} pages, stop ${m.stopReason}, ` +
        `${(f.bytes / MiB).toFixed(1)} MiB, ${m.forwarded} held, placement update ${round(m.placementMs, 1)} ms, failed ${failed} (${answered.length} /say answered)`);
      for (const e of errors) say(`    failed: ${e}`);
      return f;
    };
    const pre = await once('pre-copy', {});
    const sc = await once('stop-and-copy', { maxRounds: 0 });
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 1) : null);
    say(`stop-and-copy / pre-copy: client gap ${ratio(sc.clientGapMs, pre.clientGapMs)}x, host pause ${ratio(sc.hostPauseMs, pre.hostPauseMs)}x, total ${ratio(sc.totalMs, pre.totalMs)}x`);
    return {
      bench: 'migrate', guestMiB, rate, churnMiBPerS,
      downtimeMs: pre.clientGapMs, hostPauseMs: pre.hostPauseMs, pause: pre.pause, totalMs: pre.totalMs, rounds: pre.rounds, finalPages: pre.finalPages,
      stopReason: pre.stopReason, bytes: pre.bytes, failed: pre.failed + sc.failed,
      stopCopyDowntimeMs: sc.clientGapMs, stopCopyHostPauseMs: sc.hostPauseMs, stopCopyTotalMs: sc.totalMs, stopCopyBytes: sc.bytes,
      downtimeRatio: ratio(sc.clientGapMs, pre.clientGapMs), hostPauseRatio: ratio(sc.hostPauseMs, pre.hostPauseMs),
    };
  } finally {
    await fleet.stop();
  }
}
