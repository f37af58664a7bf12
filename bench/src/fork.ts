/**
 * `npm run bench -- fork`: a warm parent holding --mib MiB of initialized
 * state (the `pattern` program) forked into --clones clones over --hosts host
 * processes, each clone reading the leading --share of that memory. In the
 * same run, the same work by:
 *   lazy multicast   on-demand pages, each sent once to every host (Flurry)
 *   + prefetch       the same with the recorded working set pushed at fork
 *   lazy unicast     on-demand pages, each host fetching its own copy
 *   eager            every clone receives the whole memory before it starts
 *   cold boot        every clone instantiates and runs init itself
 * and local fork (copy-on-write vs copy) of one clone at 64 MiB, 256 MiB, 1 GiB.
 * With --netns: the lazy multicast fork on hosts in network namespaces of
 * their own against the same on loopback (fork-netns.ts).
 */
import { freemem } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import {
  createLogger, decodeDescriptor, forkAcross, PAGE_SIZE, releaseSnapshot, requestSnapshot, roundRobin,
  type CloneResult, type ForkMode, type ReleaseReply,
} from '@flurry/core';
import { GuestPool } from '@flurry/worker-host';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { round } from './stats.js';
import { option } from './options.js';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const MiB = 1024 * 1024;

interface RunFigures {
  mode: string;
  clones: number;
  runningMs: number;
  doneMs: number;
  bytesSent: number;
  bytesReceived: number;
  pages: { local: number; multicast: number; unicast: number; zero: number };
  faultWaitMs: number;
  failed: number;
  startP50Ms?: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  if (args.includes('--netns')) return (await import('./fork-netns.js')).run(args);
  const mib = option(args, 'mib', 256);
  const clones = option(args, 'clones', 32);
  const hostCount = option(args, 'hosts', 4);
  const share = option(args, 'share', 0.25);
  const skipLocal = args.includes('--no-local');
  if (args.includes('--local-only')) {
    const local = await localForks([64, 256, 1024], (l) => { if (!args.includes('--quiet')) console.log(l); });
    for (const l of local) console.log(`local fork ${String(l.mib).padStart(5)} MiB: copy-on-write ${l.cowMs.toFixed(3)} ms (back to back ${l.cowColdMs.toFixed(3)} ms), copy ${l.copyMs.toFixed(1)} ms`);
    return { bench: 'fork', localFork: local, localForkMs: round(Math.max(...local.map((l) => l.cowMs)), 3) };
  }
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  const threads = Math.ceil(clones / hostCount);
  const hosts = Array.from({ length: hostCount }, (_, i) => `host-${i + 1}`);
  const initInput = enc({ mib, verify: 'all', share, write: false });
  const cloneInput = enc({ verify: 'all', share, write: false });

  say(`fork: parent of ${mib} MiB, ${clones} clones over ${hostCount} hosts (${threads} guest threads each), each clone reads ${share * 100}% of the memory`);
  const fleet = await LocalFleet.start({ hosts: hostCount, hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads), FLURRY_CALL_TIMEOUT_MS: '600000', FLURRY_INIT_TIMEOUT_MS: '600000' }, gatewayEnv: { LOG_LEVEL: 'warn' } });
  const nc = await connect(fleet.adminConnectOptions());
  const figures: RunFigures[] = [];
  let memoryBytes = 0;
  let workingSetBytes = 0;
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/pattern`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions/build/pattern.wasm')) });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const digest = ((await deployed.json()) as { function: { digest: string } }).function.digest;

    const forkRun = async (label: string, mode: ForkMode, prefetch: boolean, n = clones): Promise<RunFigures> => {
      const snap = await requestSnapshot(nc, 'host-1', { requestId: `bench-${label}`, tenant: 'default', name: 'pattern', digest, initInput });
      const descriptor = decodeDescriptor(snap.descriptor);
      memoryBytes = descriptor.memoryBytes;
      let recordingBytes = 0;
      if (prefetch) {
        // Record the working set with one clone first (the "first clones" of REAP), on a host that keeps no cache after.
        await forkAcross(nc, { requestId: `bench-${label}-record`, descriptor: snap.descriptor, placement: new Map([['host-2', [0]]]), count: 1, inputs: () => cloneInput, timeoutMs: 600_000 });
        const rec = await releaseSnapshot(nc, hosts.filter((h) => h !== 'host-1'), 'default', snap.snapshotId);
        recordingBytes = rec.reduce((s, r) => s + (r.cache?.bytesReceived ?? 0), 0);
      }
      const out = await forkAcross(nc, {
        requestId: `bench-${label}`, descriptor: snap.descriptor, placement: roundRobin(hosts, n), count: n, inputs: () => cloneInput,
        mode, prefetch, initInput, timeoutMs: 600_000,
      });
      const released: ReleaseReply[] = await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
      const server = released.find((r) => r.server)?.server;
      if (mode === 'lazy' && !prefetch) workingSetBytes = (server?.workingSetChunks ?? 0) * descriptor.chunkPages * descriptor.pageSize;
      const sum = (f: (r: CloneResult) => number) => out.results.reduce((s, r) => s + f(r), 0);
      const fig: RunFigures = {
        mode: label,
        clones: n,
        runningMs: out.runningMs,
        doneMs: out.doneMs,
        // The recording clone's pages belong to the first fork, not this one.
        bytesSent: (server?.bytesSent ?? 0) - recordingBytes,
        bytesReceived: released.reduce((s, r) => s + (r.cache?.bytesReceived ?? 0), 0),
        pages: { local: sum((r) => r.pages.local), multicast: sum((r) => r.pages.multicast), unicast: sum((r) => r.pages.unicast), zero: sum((r) => r.pages.zero) },
        faultWaitMs: sum((r) => r.faultWaitMs),
        failed: out.results.filter((r) => !r.ok).length,
      };
      figures.push(fig);
      const starts = out.results.map((r) => r.startMs).sort((a, b) => a - b);
      fig.startP50Ms = starts[starts.length >> 1];
      say(`  ${label.padEnd(22)} clone start p50 ${fig.startP50Ms.toFixed(1)} ms, max ${starts[starts.length - 1].toFixed(1)} ms; run p50 ${out.results.map((r) => r.runMs).sort((a, b) => a - b)[out.results.length >> 1].toFixed(0)} ms`);
      say(`  ${label.padEnd(22)} running ${fig.runningMs.toFixed(1).padStart(8)} ms   done ${fig.doneMs.toFixed(1).padStart(8)} ms   sent ${(fig.bytesSent / MiB).toFixed(1).padStart(8)} MiB   failed ${fig.failed}`);
      return fig;
    };

    // Warm-up: every host fetches and compiles the module once, as a fleet that ran the function before has.
    await forkRun('warm-up', 'lazy', false, hostCount);
    figures.length = 0;
    const lazy = await forkRun('lazy multicast', 'lazy', false);
    const prefetched = await forkRun('lazy multicast+prefetch', 'lazy', true);
    const unicast = await forkRun('lazy unicast', 'unicast', false);
    // Eager gives every clone a whole private copy at once (about 4x the memory per clone while it
    // arrives: received messages, the copy, the clone's memory): run only as many as a quarter of free memory holds.
    const eagerClones = Math.max(1, Math.min(option(args, 'eager-clones', 8), clones, Math.floor(freemem() / 4 / (mib * MiB * 4))));
    const eager = await forkRun('eager', 'eager', false, eagerClones);
    const cold = await forkRun('cold boot', 'cold', false);

    const local = skipLocal ? [] : await localForks([64, 256, 1024], say);
    const touchedBytes = Math.floor((share * mib * MiB) / PAGE_SIZE) * PAGE_SIZE;
    say('');
    say(`touched by clones (distinct): ${(touchedBytes / MiB).toFixed(1)} MiB; working set recorded by the memory server: ${(workingSetBytes / MiB).toFixed(1)} MiB`);
    say(`bytes sent / touched: multicast ${(lazy.bytesSent / touchedBytes).toFixed(2)}x, unicast ${(unicast.bytesSent / touchedBytes).toFixed(2)}x, eager ${(eager.bytesSent / touchedBytes).toFixed(2)}x (${eagerClones} clones)`);
    say(`all running: lazy ${lazy.runningMs.toFixed(1)} ms vs cold boot ${cold.runningMs.toFixed(1)} ms (${(cold.runningMs / lazy.runningMs).toFixed(1)}x)`);
    say(`all done: lazy ${lazy.doneMs.toFixed(0)} ms, prefetch ${prefetched.doneMs.toFixed(0)} ms, unicast ${unicast.doneMs.toFixed(0)} ms, eager ${eager.doneMs.toFixed(0)} ms (${eagerClones} clones), cold ${cold.doneMs.toFixed(0)} ms`);
    for (const l of local) say(`local fork ${String(l.mib).padStart(5)} MiB: copy-on-write ${l.cowMs.toFixed(3)} ms (back to back ${l.cowColdMs.toFixed(3)} ms), copy ${l.copyMs.toFixed(1)} ms (${(l.copyMs / l.cowMs).toFixed(0)}x)`);
    return {
      bench: 'fork',
      clones,
      hosts: hostCount,
      parentMiB: mib,
      memoryBytes,
      share,
      forkMs: round(lazy.runningMs, 1),
      doneMs: round(lazy.doneMs, 1),
      prefetchForkMs: round(prefetched.runningMs, 1),
      prefetchDoneMs: round(prefetched.doneMs, 1),
      unicastDoneMs: round(unicast.doneMs, 1),
      coldBootMs: round(cold.doneMs, 1),
      coldBootRunningMs: round(cold.runningMs, 1),
      eagerMs: round(eager.doneMs, 1),
      eagerClones,
      bytesMulticast: lazy.bytesSent,
      bytesMulticastPrefetch: prefetched.bytesSent,
      bytesUnicast: unicast.bytesSent,
      bytesEager: eager.bytesSent,
      touchedBytes,
      workingSetBytes,
      multicastOverTouched: round(lazy.bytesSent / touchedBytes, 3),
      pagesLazy: lazy.pages,
      pagesUnicast: unicast.pages,
      faultWaitMsLazy: round(lazy.faultWaitMs, 1),
      failed: figures.reduce((s, f) => s + f.failed, 0),
      localFork: local,
      localForkMs: local.length ? round(Math.max(...local.map((l) => l.cowMs)), 3) : null,
      localForkColdMs: local.length ? round(Math.max(...local.map((l) => l.cowColdMs)), 3) : null,
    };
  } finally {
    await nc.close();
    await fleet.stop();
  }
}

/**
 * One clone of a warm parent in this process: copy-on-write vs copying, from
 * run() to the clone running. Copy-on-write is measured twice: back to back
 * (`cowColdMs`: each fork makes its instance on the call's path) and with the
 * host idle for a moment between forks (`cowMs`: the pool has made the next
 * instance ahead, as it does whenever a thread is idle).
 */
async function localForks(sizes: number[], say: (s: string) => void): Promise<{ mib: number; cowMs: number; cowColdMs: number; copyMs: number }[]> {
  const moduleBytes = new Uint8Array(readFileSync(join(repoRoot, 'functions/build/pattern.wasm')));
  const out: { mib: number; cowMs: number; cowColdMs: number; copyMs: number }[] = [];
  const log = createLogger('bench', {}, 'warn');
  const limits = { callTimeoutMs: 600_000, initTimeoutMs: 600_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
  for (const mib of sizes) {
    const times = { cow: NaN, cowCold: NaN, copy: NaN };
    for (const [kind, pager, gapMs] of [['cow', 'native', 50], ['cowCold', 'native', 0], ['copy', 'portable', 0]] as const) {
      const pool = await GuestPool.start({ threads: 1, limits, log, pager });
      try {
        await pool.warm('p', moduleBytes, enc({ mib: mib - 1, verify: 'none', write: false }));
        const samples: number[] = [];
        const n = pager === 'native' ? 15 : mib >= 1024 ? 2 : 4;
        for (let i = 0; i < n; i++) {
          if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
          const t0 = performance.now();
          let started = NaN;
          await pool.run('p', 0, 1, enc({ verify: 'none', write: false }), `local-${i}`, undefined, () => (started = performance.now() - t0));
          samples.push(started);
        }
        samples.sort((a, b) => a - b);
        times[kind] = samples[samples.length >> 1];
      } finally {
        await pool.close();
      }
    }
    out.push({ mib, cowMs: round(times.cow, 3), cowColdMs: round(times.cowCold, 3), copyMs: round(times.copy, 1) });
    say(`  local fork ${mib} MiB measured`);
  }
  return out;
}
