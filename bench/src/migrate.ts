/**
 * `npm run bench -- migrate [--fill-mib 8] [--rate 200] [--json]`: a 3-host
 * LocalFleet, a `room` service whose instance holds --fill-mib MiB of chat
 * messages (the services API takes no init input yet, so no `ballastMiB`
 * ballast: the state is filled with /say), a client sending /say at a steady
 * --rate through /svc/room, and the instance migrated twice: pre-copy
 * (defaults) and the closest to stop-and-copy the API allows (maxRounds 1:
 * one full round 0, then stop; the API refuses maxRounds 0).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { round } from './stats.js';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

interface Report {
  source: string; target: string; mode: string; rounds: { pages: number; bytes: number; ms: number }[];
  stopReason: string; finalPages: number; downtimeMs: number; totalMs: number; totalBytes: number; forwarded: number;
}
interface Figures { label: string; clientGapMs: number; downtimeMs: number; totalMs: number; rounds: { pages: number; ms: number }[]; bytes: number; failed: number; stopReason: string }

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const fillMiB = option(args, 'fill-mib', 8);
  const rate = option(args, 'rate', 200);
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  const fleet = await LocalFleet.start({ hosts: 3, hostEnv: { LOG_LEVEL: 'warn' }, gatewayEnv: { LOG_LEVEL: 'warn' } });
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${fleet.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/room`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions/build/room.wasm')) });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const created = await api('POST', '/v1/services', { name: 'room', function: 'room', min: 1, max: 1 });
    if (created.status !== 201) throw new Error(`service: ${await created.text()}`);
    await api('POST', '/svc/room/join', { name: 'ada' });
    const messages = Math.ceil((fillMiB * 1024 * 1024) / 131072);
    for (let i = 0; i < messages; i++) {
      const r = await api('POST', '/svc/room/say', { name: 'ada', text: `${i}`.padEnd(65536, 'x') });
      if (!r.ok) throw new Error(`fill: ${await r.text()}`);
    }
    say(`migrate: room instance holding ${fillMiB} MiB of messages (${messages} x 128 KiB), client at ${rate} req/s`);

    const once = async (label: string, opts: Record<string, unknown>): Promise<Figures> => {
      const svc = ((await (await api('GET', '/v1/services/room')).json()) as { service: { instances: { id: string }[] } }).service;
      const id = svc.instances[0].id;
      let stop = false;
      let failed = 0;
      const answered: number[] = [];
      const client = (async () => {
        const period = 1000 / rate;
        let next = performance.now();
        while (!stop) {
          next += period;
          const r = await api('POST', '/svc/room/say', { name: 'ada', text: 'hi' }).catch(() => undefined);
          if (r?.ok) { await r.arrayBuffer(); answered.push(performance.now()); } else failed++;
          const wait = next - performance.now();
          if (wait > 0) await new Promise((res) => setTimeout(res, wait));
        }
      })();
      await new Promise((res) => setTimeout(res, 500));
      const res = await api('POST', `/v1/instances/${id}/migrate`, opts);
      const body = (await res.json()) as { migration?: Report; error?: unknown };
      await new Promise((res) => setTimeout(res, 500));
      stop = true;
      await client;
      if (!body.migration) throw new Error(`migrate ${label}: ${res.status} ${JSON.stringify(body)}`);
      const m = body.migration;
      let gap = 0;
      for (let i = 1; i < answered.length; i++) gap = Math.max(gap, answered[i] - answered[i - 1]);
      const f: Figures = {
        label, clientGapMs: round(gap, 1), downtimeMs: round(m.downtimeMs, 1), totalMs: round(m.totalMs, 1),
        rounds: m.rounds.map((x) => ({ pages: x.pages, ms: round(x.ms, 1) })), bytes: m.totalBytes, failed, stopReason: m.stopReason,
      };
      say(`  ${label.padEnd(14)} ${m.source}->${m.target} (${m.mode}) client gap ${f.clientGapMs} ms  host pause ${f.downtimeMs} ms  total ${f.totalMs} ms  rounds ${f.rounds.map((r) => `${r.pages}p/${r.ms}ms`).join(' ')}  stop ${m.stopReason}  ${(f.bytes / 1048576).toFixed(1)} MiB  failed ${failed}  (${answered.length} answered)`);
      return f;
    };
    const pre = await once('pre-copy', {});
    const sc = await once('stop-and-copy', { maxRounds: 1 });
    say(`stop-and-copy / pre-copy: host pause ${(sc.downtimeMs / pre.downtimeMs).toFixed(1)}x, client gap ${(sc.clientGapMs / pre.clientGapMs).toFixed(1)}x, total ${(sc.totalMs / pre.totalMs).toFixed(2)}x`);
    return {
      bench: 'migrate', fillMiB, guestMiB: round((pre.rounds[0]?.pages ?? 0) * 4096 / 1048576, 1), rate, downtimeMs: pre.downtimeMs, clientGapMs: pre.clientGapMs, totalMs: pre.totalMs, rounds: pre.rounds,
      bytes: pre.bytes, failed: pre.failed + sc.failed, stopCopyDowntimeMs: sc.downtimeMs, stopCopyClientGapMs: sc.clientGapMs, stopCopyTotalMs: sc.totalMs, stopCopyRounds: sc.rounds,
    };
  } finally {
    await fleet.stop();
  }
}
