/**
 * `npm run bench -- burst [--max 6] [--target 4] [--low-rate 20] [--burst-clients 32]
 *   [--low-s 4] [--burst-s 6] [--after-s 4] [--cooldown-ms 3000] [--consolidate-ms 1000]
 *   [--settle-s 60] [--json]`
 *
 * A `room` service under a load that steps from a low rate (--low-rate
 * requests/s from two paced clients) to a burst (--burst-clients more clients
 * in closed loops, no pause) and back, on a 3-host LocalFleet. Twice, each on
 * its own fleet:
 *
 * - autoscaled: min 1, max --max, targetConcurrency --target, consolidation
 *   every --consolidate-ms, scale-in cool-down --cooldown-ms;
 * - baseline: the same service held at --max instances from the start
 *   (consolidation off).
 *
 * Reports the time from the burst's first request to the controller's
 * scale-out decision (its log line), to the first answer from a new instance
 * and to max size; p50/p99 latency during the burst for both and their
 * ratios; and hosts holding instances before, during and after the burst
 * (after: once consolidation brought them back down, or --settle-s).
 * Requests use GET /svc/burst/messages?since=0 (no membership needed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { round, summarize, type LatencySummary } from './stats.js';
import { option } from './options.js';

interface Sample { t: number; ms: number; ok: boolean; instance: string; phase: 'low' | 'burst' | 'after' }
interface HostSample { t: number; instances: number; hostsInUse: number; releasable: number }

interface RunFigures {
  burst: LatencySummary;
  failed: number;
  requests: number;
  decisionMs?: number;
  firstNewInstanceMs?: number;
  maxSizeMs?: number;
  maxInstances: number;
  hostsBefore: number;
  hostsDuring: number;
  hostsAfter?: number;
  settleMs?: number;
  releasableAfter?: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const o = {
    max: option(args, 'max', 6),
    target: option(args, 'target', 4),
    lowRate: option(args, 'low-rate', 20),
    burstClients: option(args, 'burst-clients', 32),
    lowS: option(args, 'low-s', 4),
    burstS: option(args, 'burst-s', 6),
    afterS: option(args, 'after-s', 4),
    cooldownMs: option(args, 'cooldown-ms', 3000),
    consolidateMs: option(args, 'consolidate-ms', 1000),
    settleS: option(args, 'settle-s', 60),
  };
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  say(`burst: room service, ${o.lowRate} req/s -> +${o.burstClients} closed-loop clients for ${o.burstS} s -> ${o.lowRate} req/s; max ${o.max}, target ${o.target} in flight per instance`);
  const auto = await once(o, true, say);
  const base = await once(o, false, say);
  const ratio = (a: number, b: number) => round(a / b, 2);
  say(`autoscaled / held at max: burst p50 ${ratio(auto.burst.p50Ms, base.burst.p50Ms)}x, p99 ${ratio(auto.burst.p99Ms, base.burst.p99Ms)}x`);
  return {
    bench: 'burst', ...o,
    decisionMs: auto.decisionMs, firstNewInstanceMs: auto.firstNewInstanceMs, maxSizeMs: auto.maxSizeMs, maxInstances: auto.maxInstances,
    burstP50Ms: round(auto.burst.p50Ms, 2), burstP99Ms: round(auto.burst.p99Ms, 2),
    baselineP50Ms: round(base.burst.p50Ms, 2), baselineP99Ms: round(base.burst.p99Ms, 2),
    p50Ratio: ratio(auto.burst.p50Ms, base.burst.p50Ms), p99Ratio: ratio(auto.burst.p99Ms, base.burst.p99Ms),
    hostsBefore: auto.hostsBefore, hostsDuring: auto.hostsDuring, hostsAfter: auto.hostsAfter, settleMs: auto.settleMs, releasableAfter: auto.releasableAfter,
    failed: auto.failed + base.failed, requests: auto.requests + base.requests,
  };
}

async function once(o: Record<string, number>, autoscaled: boolean, say: (s: string) => void): Promise<RunFigures> {
  const label = autoscaled ? 'autoscaled' : 'held at max';
  const decisions: number[] = [];
  const fleet = await LocalFleet.start({
    hosts: 3,
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_HEARTBEAT_MS: '200', FLURRY_HOST_TTL_S: '2' },
    gatewayEnv: {
      FLURRY_HOST_TTL_S: '2',
      FLURRY_SCALE_IN_COOLDOWN_MS: String(o.cooldownMs),
      FLURRY_CONSOLIDATE_MS: autoscaled ? String(o.consolidateMs) : '0',
    },
    onLine: (service, line) => {
      if (service !== 'gateway' || !line.includes('"scaling out"')) return;
      try {
        const rec = JSON.parse(line) as { time: string; service: string; msg: string };
        if (rec.msg === 'scaling out' && rec.service === 'default/burst') decisions.push(Date.parse(rec.time));
      } catch {
        // Not a log record.
      }
    },
  });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${fleet.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/room`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions/build/room.wasm')) });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const min = autoscaled ? 1 : o.max;
    const created = await api('POST', '/v1/services', { name: 'burst', function: 'room', min, max: o.max, targetConcurrency: o.target });
    if (created.status !== 201) throw new Error(`service: ${await created.text()}`);
    const instanceCount = async () => ((await (await api('GET', '/v1/services/burst')).json()) as { service: { instances: unknown[] } }).service.instances.length;
    while ((await instanceCount()) < min) await new Promise((r) => setTimeout(r, 50));

    const t0 = performance.now();
    const samples: Sample[] = [];
    let phase: Sample['phase'] = 'low';
    let running = true;
    const request = async () => {
      const start = performance.now();
      const res = await api('GET', '/svc/burst/messages?since=0').catch(() => undefined);
      const ok = res?.status === 200;
      if (res) await res.arrayBuffer();
      samples.push({ t: start - t0, ms: performance.now() - start, ok, instance: res?.headers.get('x-flurry-instance') ?? '', phase });
    };
    // The low rate: two paced clients, through all phases.
    const paced = Array.from({ length: 2 }, async (_, k) => {
      const period = 2000 / Math.max(o.lowRate, 0.001);
      let next = performance.now() + (k * period) / 2;
      while (running) {
        await request();
        next += period;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    });
    // Hosts and instances, sampled through the run.
    const hostSamples: HostSample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [hosts, instances] = await Promise.all([
          api('GET', '/v1/hosts').then((r) => r.json() as Promise<{ hosts: { instances?: unknown[]; releasable?: boolean }[] }>),
          instanceCount(),
        ]).catch(() => [undefined, 0] as const);
        if (hosts) {
          hostSamples.push({
            t: performance.now() - t0, instances,
            hostsInUse: hosts.hosts.filter((h) => (h.instances?.length ?? 0) > 0).length,
            releasable: hosts.hosts.filter((h) => h.releasable).length,
          });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await new Promise((r) => setTimeout(r, o.lowS * 1000));
    const before = hostSamples.at(-1);
    const seenBefore = new Set(samples.map((s) => s.instance));
    phase = 'burst';
    const burstAt = performance.now() - t0;
    const burstWall = Date.now();
    const burstEnd = performance.now() + o.burstS * 1000;
    await Promise.all(Array.from({ length: o.burstClients }, async () => {
      while (performance.now() < burstEnd) await request();
    }));
    phase = 'after';
    const afterAt = performance.now() - t0;
    await new Promise((r) => setTimeout(r, o.afterS * 1000));
    running = false;
    await Promise.all(paced);

    // Consolidation should bring the hosts in use back to where they were.
    let settled: HostSample | undefined;
    if (autoscaled) {
      const deadline = performance.now() + o.settleS * 1000;
      while (performance.now() < deadline) {
        const last = hostSamples.at(-1);
        if (last && before && last.hostsInUse <= before.hostsInUse && last.instances <= min) {
          settled = last;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    sampling = false;
    await sampler;

    const burst = summarize(samples.filter((s) => s.phase === 'burst' && s.ok).map((s) => s.ms));
    const during = hostSamples.filter((h) => h.t >= burstAt && h.t <= afterAt);
    const firstNew = samples.filter((s) => s.phase !== 'low' && s.ok && !seenBefore.has(s.instance)).sort((a, b) => a.t + a.ms - (b.t + b.ms))[0];
    const reachedMax = hostSamples.find((h) => h.t >= burstAt && h.instances >= o.max);
    const decision = decisions.find((d) => d >= burstWall - 5);
    const f: RunFigures = {
      burst,
      failed: samples.filter((s) => !s.ok).length,
      requests: samples.length,
      decisionMs: decision !== undefined ? decision - burstWall : undefined,
      firstNewInstanceMs: firstNew ? round(firstNew.t + firstNew.ms - burstAt, 1) : undefined,
      maxSizeMs: reachedMax ? round(reachedMax.t - burstAt, 0) : undefined,
      maxInstances: Math.max(0, ...hostSamples.map((h) => h.instances)),
      hostsBefore: before?.hostsInUse ?? 0,
      hostsDuring: Math.max(0, ...during.map((h) => h.hostsInUse)),
      hostsAfter: autoscaled ? (settled ?? hostSamples.at(-1))?.hostsInUse : undefined,
      settleMs: settled ? round(settled.t - afterAt, 0) : undefined,
      releasableAfter: autoscaled ? (settled ?? hostSamples.at(-1))?.releasable : undefined,
    };
    say(`  ${label.padEnd(12)} burst p50 ${round(burst.p50Ms, 2)} ms  p99 ${round(burst.p99Ms, 2)} ms  (${burst.count} answers)  failed ${f.failed}/${f.requests}  instances up to ${f.maxInstances}`);
    if (autoscaled) {
      say(`  ${''.padEnd(12)} scale-out decision ${f.decisionMs ?? '-'} ms, first answer from a new instance ${f.firstNewInstanceMs ?? '-'} ms, max size ${f.maxSizeMs ?? '-'} ms after the burst began`);
      say(`  ${''.padEnd(12)} hosts in use: before ${f.hostsBefore}, during ${f.hostsDuring}, after ${f.hostsAfter ?? '-'} (${f.settleMs !== undefined ? `${f.settleMs} ms after the burst` : `not settled within ${o.settleS} s`}), releasable after ${f.releasableAfter ?? '-'}`);
    }
    return f;
  } finally {
    await fleet.stop();
  }
}
