/**
 * `npm run bench -- fork`: a warm parent holding --mib MiB of initialized
 * state (the `pattern` program) forked into --clones clones over --hosts host
 * processes, each clone reading the leading --share of that memory. In the
 * same run, the same work by:
 *   lazy multicast   on-demand pages, each sent once to every host (Flurry),
 *                    each host adopting the snapshot when its fork request comes
 *   adopted ahead    the same with the snapshot adopted on every host before
 *                    the fork (adoptAhead; its time reported apart): forkMs
 *   + prefetch       the same with the recorded working set pushed at fork
 *   lazy unicast     on-demand pages, each host fetching its own copy
 *   eager            every clone receives the whole memory before it starts
 *   cold boot        every clone instantiates and runs init itself
 * and local fork (copy-on-write vs copy) of one clone at 64 MiB, 256 MiB, 1 GiB.
 * The lazy multicast fork is broken down by phase and host (fork-phases.ts),
 * and one lazy page fault served from the host's page store is timed against
 * a plain first-touch fault, before the fleet starts (fault-probe.ts).
 * With --netns: the lazy multicast fork on hosts in network namespaces of
 * their own against the same on loopback (fork-netns.ts).
 */
import { freemem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import {
  adoptAhead, createLogger, decodeDescriptor, forkAcross, PAGE_SIZE, releaseSnapshot, requestSnapshot, roundRobin,
  type CloneResult, type ForkMode, type ReleaseReply,
} from '@flurry/core';
import { GuestPool, probeFaults, type FaultFigures } from '@flurry/worker-host';
import { LocalFleet, repoRoot } from '@flurry/infra';
import { breakdownTable, forkBreakdown, type ForkBreakdown } from './fork-phases.js';
import { probeThreadWake } from './fork-wake.js';
import { round, summarize } from './stats.js';
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
  phases?: ForkBreakdown;
  /** Adopted ahead: the snapshot made ready on every host (adoptAhead) between the snapshot and the fork, in ms; not in runningMs. */
  adoptAheadMs?: number;
  /** The driver's own event loop while the fork ran: its longest delay (ms), to tell a late answer the driver could not read from one that came late. */
  driverLoopMaxMs?: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  if (args.includes('--netns')) return (await import('./fork-netns.js')).run(args);
  const mib = option(args, 'mib', 256);
  const clones = option(args, 'clones', 32);
  const hostCount = option(args, 'hosts', 4);
  const share = option(args, 'share', 0.25);
  const skipLocal = args.includes('--no-local');
  const quiet = args.includes('--quiet');
  const say = (s: string) => { if (!quiet) console.log(s); };
  // First, while no fleet runs on the machine: one lazy fault against one first-touch fault.
  const faults = faultFigures(say);
  if (args.includes('--local-only')) {
    const wake = await wakeFigures(say);
    const local = await localForks([64, 256, 1024], say);
    for (const l of local) console.log(localLine(l));
    return { bench: 'fork', ...faults, threadWake: wake, ...localFigures(local) };
  }
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

    const forkRun = async (label: string, mode: ForkMode, prefetch: boolean, n = clones, ahead = false): Promise<RunFigures> => {
      const snap = await requestSnapshot(nc, 'host-1', { requestId: `bench-${label}`, tenant: 'default', name: 'pattern', digest, initInput });
      const descriptor = decodeDescriptor(snap.descriptor);
      let adoptAheadMs: number | undefined;
      if (ahead) {
        // As a coordinator would once the snapshot is made and its hosts chosen.
        const t = performance.now();
        await adoptAhead(nc, hosts, snap.descriptor, { requestId: `bench-${label}-ahead`, mode, prefetch, timeoutMs: 600_000 });
        adoptAheadMs = performance.now() - t;
      }
      memoryBytes = descriptor.memoryBytes;
      let recordingBytes = 0;
      if (prefetch) {
        // Record the working set with one clone first (the "first clones" of REAP), on a host that keeps no cache after.
        await forkAcross(nc, { requestId: `bench-${label}-record`, descriptor: snap.descriptor, placement: new Map([['host-2', [0]]]), count: 1, inputs: () => cloneInput, timeoutMs: 600_000 });
        const rec = await releaseSnapshot(nc, hosts.filter((h) => h !== 'host-1'), 'default', snap.snapshotId);
        recordingBytes = rec.reduce((s, r) => s + (r.cache?.bytesReceived ?? 0), 0);
      }
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const out = await forkAcross(nc, {
        requestId: `bench-${label}`, descriptor: snap.descriptor, placement: roundRobin(hosts, n), count: n, inputs: () => cloneInput,
        mode, prefetch, initInput, timeoutMs: 600_000,
      });
      loop.disable();
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
        adoptAheadMs,
        driverLoopMaxMs: round(loop.max / 1e6, 1),
      };
      figures.push(fig);
      const starts = out.results.map((r) => r.startMs).sort((a, b) => a - b);
      fig.startP50Ms = starts[starts.length >> 1];
      fig.phases = forkBreakdown(out.sentAt, out.replies, out.results, out.repliedMs);
      say(`  ${label.padEnd(22)} clone start p50 ${fig.startP50Ms.toFixed(1)} ms, max ${starts[starts.length - 1].toFixed(1)} ms; run p50 ${out.results.map((r) => r.runMs).sort((a, b) => a - b)[out.results.length >> 1].toFixed(0)} ms`);
      say(`  ${label.padEnd(22)} running ${fig.runningMs.toFixed(1).padStart(8)} ms   done ${fig.doneMs.toFixed(1).padStart(8)} ms   sent ${(fig.bytesSent / MiB).toFixed(1).padStart(8)} MiB   failed ${fig.failed}`);
      for (const why of new Set(out.results.filter((r) => !r.ok).map((r) => `${r.hostId}: ${r.error?.message}`))) say(`  ${label.padEnd(22)} failed on ${why}`);
      return fig;
    };

    // Warm-up: every host fetches and compiles the module once, as a fleet that ran the function before has.
    await forkRun('warm-up', 'lazy', false, hostCount);
    figures.length = 0;
    const adoptedOnFork = await forkRun('lazy multicast', 'lazy', false);
    say('  where the lazy multicast fork went (each host adopts the snapshot when its fork request comes):');
    for (const line of breakdownTable(adoptedOnFork.phases!)) say(line);
    const lazy = await forkRun('lazy, adopted ahead', 'lazy', false, clones, true);
    say(`  where it went with the snapshot adopted ahead (adoptAhead took ${lazy.adoptAheadMs!.toFixed(1)} ms before the fork):`);
    for (const line of breakdownTable(lazy.phases!)) say(line);
    say(`  the driver's event loop, longest delay while the fork ran: ${lazy.driverLoopMaxMs} ms adopted ahead, ${adoptedOnFork.driverLoopMaxMs} ms adopted on the fork`);
    say(`  all running: adopted ahead ${lazy.runningMs.toFixed(1)} ms vs adopted on the fork ${adoptedOnFork.runningMs.toFixed(1)} ms (${(adoptedOnFork.runningMs / lazy.runningMs).toFixed(2)}x)`);
    const touchedBytes = Math.floor((share * mib * MiB) / PAGE_SIZE) * PAGE_SIZE;
    const lazyFigures = {
      bench: 'fork', clones, hosts: hostCount, parentMiB: mib, memoryBytes, share,
      forkMs: round(lazy.runningMs, 1), phases: lazy.phases, driverLoopMaxMs: lazy.driverLoopMaxMs, driverLoopMaxAdoptedOnForkMs: adoptedOnFork.driverLoopMaxMs, doneMs: round(lazy.doneMs, 1), adoptAheadMs: round(lazy.adoptAheadMs!, 1),
      forkAdoptedOnForkMs: round(adoptedOnFork.runningMs, 1), phasesAdoptedOnFork: adoptedOnFork.phases,
      bytesMulticast: lazy.bytesSent, touchedBytes, multicastOverTouched: round(lazy.bytesSent / touchedBytes, 3),
      pagesLazy: lazy.pages, faultWaitMsLazy: round(lazy.faultWaitMs, 1),
    };
    if (args.includes('--lazy-only')) {
      const local = skipLocal ? [] : await localForks([64, 256, 1024], say);
      for (const l of local) say(localLine(l));
      return { ...lazyFigures, failed: lazy.failed + adoptedOnFork.failed, ...faults, ...(local.length ? localFigures(local) : {}) };
    }
    const prefetched = await forkRun('lazy multicast+prefetch', 'lazy', true);
    const unicast = await forkRun('lazy unicast', 'unicast', false);
    // Eager gives every clone a whole private copy at once (about 4x the memory per clone while it
    // arrives: received messages, the copy, the clone's memory): run only as many as a quarter of free memory holds.
    const eagerClones = Math.max(1, Math.min(option(args, 'eager-clones', 8), clones, Math.floor(freemem() / 4 / (mib * MiB * 4))));
    const eager = await forkRun('eager', 'eager', false, eagerClones);
    const cold = await forkRun('cold boot', 'cold', false);

    const local = skipLocal ? [] : await localForks([64, 256, 1024], say);
    say('');
    say(`touched by clones (distinct): ${(touchedBytes / MiB).toFixed(1)} MiB; working set recorded by the memory server: ${(workingSetBytes / MiB).toFixed(1)} MiB`);
    say(`bytes sent / touched: multicast ${(lazy.bytesSent / touchedBytes).toFixed(2)}x, unicast ${(unicast.bytesSent / touchedBytes).toFixed(2)}x, eager ${(eager.bytesSent / touchedBytes).toFixed(2)}x (${eagerClones} clones)`);
    say(`all running: lazy ${lazy.runningMs.toFixed(1)} ms vs cold boot ${cold.runningMs.toFixed(1)} ms (${(cold.runningMs / lazy.runningMs).toFixed(1)}x)`);
    say(`all done: lazy ${lazy.doneMs.toFixed(0)} ms, prefetch ${prefetched.doneMs.toFixed(0)} ms, unicast ${unicast.doneMs.toFixed(0)} ms, eager ${eager.doneMs.toFixed(0)} ms (${eagerClones} clones), cold ${cold.doneMs.toFixed(0)} ms`);
    for (const l of local) say(localLine(l));
    return {
      ...lazyFigures,
      prefetchForkMs: round(prefetched.runningMs, 1),
      prefetchDoneMs: round(prefetched.doneMs, 1),
      unicastDoneMs: round(unicast.doneMs, 1),
      coldBootMs: round(cold.doneMs, 1),
      coldBootRunningMs: round(cold.runningMs, 1),
      eagerMs: round(eager.doneMs, 1),
      eagerClones,
      bytesMulticastPrefetch: prefetched.bytesSent,
      bytesUnicast: unicast.bytesSent,
      bytesEager: eager.bytesSent,
      workingSetBytes,
      pagesUnicast: unicast.pages,
      failed: figures.reduce((s, f) => s + f.failed, 0),
      ...faults,
      ...(local.length ? localFigures(local) : {}),
    };
  } finally {
    await nc.close();
    await fleet.stop();
  }
}

/** A message reaching an idle thread through its event loop against a futex doorbell, alternated in one run. */
async function wakeFigures(say: (s: string) => void) {
  const w = await probeThreadWake();
  say(`a call reaching a thread idle for 20 ms (${w.samples} each, alternated): postMessage p50 ${w.messageP50Us} µs (p90 ${w.messageP90Us}); ` +
    `postMessage + Atomics.wait doorbell p50 ${w.doorbellP50Us} µs (p90 ${w.doorbellP90Us}); SharedArrayBuffer mailbox + Atomics.wait p50 ${w.mailboxP50Us} µs (p90 ${w.mailboxP90Us})`);
  return w;
}

/** The fault probe's figures, printed, and its headline fields. */
function faultFigures(say: (s: string) => void) {
  const f = probeFaults();
  const t = (x: { medianUs: number; p99Us: number; samples: number } | null) => (x ? `median ${x.medianUs.toFixed(2)} µs, p99 ${x.p99Us.toFixed(2)} µs (${x.samples} faults)` : 'not measured');
  say(`fault service (${f.path}; clock ${f.clockNs ?? '?'} ns per read pair, taken off), a page the host holds, as forks serve it (${f.mapped ? 'store mapped: the kernel maps it' : 'through the pager'}):`);
  say(`  first read ${t(f.lazyPage)}; first write ${t(f.lazyPageWrite)}${f.lazyWindow ? `; a first read mapping its whole 16-page window ${t(f.lazyWindow)}` : ''}`);
  say(`  through the pager (UFFDIO_COPY, the path before): one page ${t(f.lazyPagePager)}, the pager's own part ${f.handlerUs?.toFixed(2) ?? '—'} µs; a whole ${f.lazyChunk?.chunkPages ?? 16}-page chunk ${t(f.lazyChunk)}`);
  say(`  first touch of anonymous memory: write ${t(f.firstTouchWrite)}, read ${t(f.firstTouchRead)}`);
  const lazy = f.lazyPage?.medianUs ?? null;
  const touch = f.firstTouchWrite?.medianUs ?? null;
  const ratio = (x: number | null | undefined, y: number | null | undefined) => (x != null && y ? round(x / y, 2) : null);
  const r = ratio(lazy, touch);
  if (r !== null) say(`  lazy fault / first-touch write: ${r}x (goal ≤ 2x); first writes ${ratio(f.lazyPageWrite?.medianUs, touch)}x, first reads ${ratio(lazy, f.firstTouchRead?.medianUs)}x; the pager's path ${ratio(f.lazyPagePager?.medianUs, touch)}x`);
  const med = (x: { medianUs: number } | null) => (x ? round(x.medianUs, 2) : null);
  return {
    faultServiceUs: lazy === null ? null : round(lazy, 2),
    faultServiceP99Us: f.lazyPage ? round(f.lazyPage.p99Us, 2) : null,
    faultServiceWriteUs: med(f.lazyPageWrite),
    faultServiceWindowUs: med(f.lazyWindow),
    faultServicePagerUs: med(f.lazyPagePager),
    firstTouchUs: touch === null ? null : round(touch, 2),
    firstTouchP99Us: f.firstTouchWrite ? round(f.firstTouchWrite.p99Us, 2) : null,
    firstTouchReadUs: med(f.firstTouchRead),
    faultVsFirstTouch: r,
    faultWriteVsFirstTouch: ratio(f.lazyPageWrite?.medianUs, touch),
    faultPagerVsFirstTouch: ratio(f.lazyPagePager?.medianUs, touch),
    faultPath: f.path,
    faultMapped: f.mapped,
    faultProbe: f,
  };
}

interface LocalFork {
  mib: number;
  /**
   * Fork request to the clone's first instruction, nothing made ahead for
   * that fork, back to back: each fork requested as soon as the previous
   * call returned (median). Forks alternate between two parents, so the
   * forked one never has a spare instance.
   */
  backToBackMs: number;
  /**
   * Of which (median of each): the request reaching the guest thread (the
   * message and the thread waking), the thread's own steps before it makes
   * the instance, and making the instance (a pooled memory, the snapshot
   * mapped over it, instantiating, setting the globals), each split (ForkParts).
   */
  backToBackParts: ForkParts;
  /** The same forks, each after the thread idled 20 ms (asleep in its mailbox when the request comes), median, and its parts. */
  afterIdleMs: number;
  afterIdleParts: ForkParts;
  /** Forks of the back-to-back run whose memory came from the thread's pool, and whose instance came with it (made ahead, or given back by the last clone of the module: generic, for any snapshot of the module). */
  pooledForks: number;
  instanceAheadForks: number;
  forks: number;
  /**
   * The same back-to-back forks alternating between parents of two modules, so
   * that no instance made ahead is of the forked module: the pooled memory
   * only (the figure before instances were made ahead), median, and its instance part.
   */
  backToBackMemoryOnlyMs: number;
  backToBackMemoryOnlyInstanceMs: number;
  /** The same back-to-back forks with the memory pool off (each clone makes and grows a new memory: the figure before the pool), median. */
  backToBackUnpooledMs: number;
  backToBackUnpooledInstanceMs: number;
  /** Fork request to the clone's first instruction, with its instance made ahead (median). */
  madeAheadMs: number;
  /** Today's figures, to the host hearing that `on_restore` returned: instance made ahead, and same parent back to back. */
  cowMs: number;
  cowColdMs: number;
  copyMs: number;
}

/**
 * Where a fork's time to the first instruction went (medians, ms): the
 * request reaching the thread (hopMs), split into the pool's part up to the
 * doorbell's ring (this thread's clock alone) and the ring to the thread
 * holding the message (across two threads' clocks, which may differ by tens
 * of µs); the thread's steps before it makes the instance; the instance,
 * split into its steps on the thread's own clock.
 */
interface ForkParts {
  threadMs: number;
  hopMs: number;
  ringMs: number;
  wakeMs: number;
  callSetupMs: number;
  instanceMs: number;
  takeMs: number;
  restoreMs: number;
  instantiateMs: number;
  globalsMs: number;
}

function localLine(l: LocalFork): string {
  const parts = (p: ForkParts) => `to the thread ${p.hopMs.toFixed(3)} [request to ring ${p.ringMs.toFixed(3)}, ring to message ${p.wakeMs.toFixed(3)}] + call setup ${p.callSetupMs.toFixed(3)} + ` +
    `instance ${p.instanceMs.toFixed(3)} [memory ${p.takeMs.toFixed(3)}, snapshot mapped ${p.restoreMs.toFixed(3)}, instantiate ${p.instantiateMs.toFixed(3)}, globals ${p.globalsMs.toFixed(3)}]`;
  return `local fork ${String(l.mib).padStart(5)} MiB: to first instruction, nothing made ahead: back to back ${l.backToBackMs.toFixed(3)} ms ` +
    `(${parts(l.backToBackParts)}; pooled memory ${l.pooledForks}/${l.forks}, instance ahead ${l.instanceAheadForks}/${l.forks}), ` +
    `after 20 ms idle ${l.afterIdleMs.toFixed(3)} ms (${parts(l.afterIdleParts)}); ` +
    `back to back, memory only (two modules alternating) ${l.backToBackMemoryOnlyMs.toFixed(3)} ms (instance ${l.backToBackMemoryOnlyInstanceMs.toFixed(3)}); without the pool ${l.backToBackUnpooledMs.toFixed(3)} ms (instance ${l.backToBackUnpooledInstanceMs.toFixed(3)}, ` +
    `${(l.backToBackUnpooledMs / l.backToBackMs).toFixed(1)}x); ${l.madeAheadMs.toFixed(3)} ms made ahead; ` +
    `to running: made ahead ${l.cowMs.toFixed(3)} ms, same parent back to back ${l.cowColdMs.toFixed(3)} ms; copy ${l.copyMs.toFixed(1)} ms`;
}

function localFigures(local: LocalFork[]): Record<string, unknown> {
  const worst = (f: (l: LocalFork) => number) => round(Math.max(...local.map(f)), 3);
  return {
    localFork: local,
    localForkBackToBackMs: worst((l) => l.backToBackMs),
    localForkAfterIdleMs: worst((l) => l.afterIdleMs),
    localForkBackToBackMemoryOnlyMs: worst((l) => l.backToBackMemoryOnlyMs),
    localForkBackToBackUnpooledMs: worst((l) => l.backToBackUnpooledMs),
    localForkMadeAheadMs: worst((l) => l.madeAheadMs),
    localForkMs: worst((l) => l.cowMs),
    localForkColdMs: worst((l) => l.cowColdMs),
  };
}

const median = (xs: number[]) => summarize(xs).p50Ms;

/**
 * One clone of a warm parent in this process, at each size. With the native
 * pager (copy-on-write), these ways:
 *   nothing made ahead, back to back
 *                       the issue's figure: each fork requested as soon as
 *                       the previous call returned, forks alternating
 *                       between two parents of the same module and init, so
 *                       the forked parent never has a spare instance (a
 *                       thread keeps one, of the parent it served last).
 *                       Its memory comes from the thread's pool (generic,
 *                       made ahead) with an instance of the module made on
 *                       it ahead (generic too: no snapshot in it). Baselines
 *                       in the same run, back to back too: alternating
 *                       between parents of two modules (the instance ahead
 *                       is never of the forked module: memory only), and the
 *                       pool off (a new memory made and grown per fork)
 *   nothing made ahead, after idle
 *                       the same forks 20 ms apart: the thread is asleep in
 *                       its mailbox when the request comes
 *   made ahead          the same parent each time, idle between forks: the
 *                       thread has made the next instance ahead
 *   same parent, back to back  the next fork as soon as the last ended: the
 *                       spare is being made when it comes (to running)
 * The forks with nothing made ahead and made ahead are timed from the
 * request to the clone's first instruction (the guest thread's clock, on the
 * same epoch clock as this one); the old figures to the moment this thread
 * hears that `on_restore` returned. Then the copying fallback (portable pager).
 */
async function localForks(sizes: number[], say: (s: string) => void): Promise<LocalFork[]> {
  const moduleBytes = new Uint8Array(readFileSync(join(repoRoot, 'functions/build/pattern.wasm')));
  // The same program as another module (a custom section appended: another digest), for the memory-only baseline.
  const name = new TextEncoder().encode('bench');
  const otherModule = new Uint8Array([...moduleBytes, 0, name.length + 1, name.length, ...name]);
  const out: LocalFork[] = [];
  const log = createLogger('bench', {}, 'warn');
  const limits = { callTimeoutMs: 600_000, initTimeoutMs: 600_000, maxOutputBytes: 4 * MiB, maxLogLines: 64, maxLogBytes: 65536 };
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (const mib of sizes) {
    const init = enc({ mib: mib - 1, verify: 'none', write: false });
    const input = enc({ verify: 'none', write: false });
    /** One fork: to the first instruction (guest clock), to running (heard here), and the thread's wait. */
    const fork = async (pool: GuestPool, key: string, i: number) => {
      const t0 = performance.now();
      let running = NaN;
      const r = await pool.run(key, 0, 1, input, `local-${i}`, undefined, () => (running = performance.now() - t0));
      const m = r.memory!;
      const sent = performance.timeOrigin + t0;
      const firstInstruction = m.createdAt! - sent;
      const instanceMs = m.spare ? 0 : m.restoreMs;
      const hopMs = m.receivedAt! - sent;
      const ringMs = m.postedAt! - sent;
      const ip = m.instanceParts ?? { takeMs: 0, restoreMs: 0, instantiateMs: 0, globalsMs: 0 };
      return {
        firstInstruction, running, threadMs: firstInstruction - instanceMs, hopMs, ringMs, wakeMs: hopMs - ringMs, callSetupMs: firstInstruction - instanceMs - hopMs, instanceMs, ...ip,
        spare: m.spare, pooled: m.pooled === true, instanceAhead: m.instanceAhead === true,
      };
    };
    /**
     * Nothing made ahead for the fork: alternating between two parents (of the same module and init, or of two
     * modules); each fork `idleMs` after the last returned (0: back to back, requested as soon as it returned).
     */
    const alternate = async (pool: GuestPool, n: number, first: string, second: string, idleMs: number) => {
      const forks: Awaited<ReturnType<typeof fork>>[] = [];
      for (let i = 0; i < n; i++) {
        if (idleMs > 0) await pause(idleMs);
        const f = await fork(pool, i % 2 ? second : first, i);
        if (f.spare) throw new Error('a fork meant to have nothing made ahead found a spare instance');
        forks.push(f);
      }
      return forks;
    };
    const parts = (forks: Awaited<ReturnType<typeof fork>>[]): ForkParts => {
      const m = (f: (x: (typeof forks)[number]) => number) => round(median(forks.map(f)), 3);
      return {
        threadMs: m((f) => f.threadMs), hopMs: m((f) => f.hopMs), ringMs: m((f) => f.ringMs), wakeMs: m((f) => f.wakeMs), callSetupMs: m((f) => f.callSetupMs),
        instanceMs: m((f) => f.instanceMs), takeMs: m((f) => f.takeMs), restoreMs: m((f) => f.restoreMs), instantiateMs: m((f) => f.instantiateMs), globalsMs: m((f) => f.globalsMs),
      };
    };
    const unpooledPool = await GuestPool.start({ threads: 1, limits: { ...limits, pooledMemories: 0 }, log, pager: 'native' });
    let unpooled: Awaited<ReturnType<typeof fork>>[];
    try {
      await unpooledPool.warm('a', moduleBytes, init);
      await unpooledPool.warm('b', moduleBytes, init);
      // The thread's spare is of 'b', loaded last.
      unpooled = await alternate(unpooledPool, 15, 'a', 'b', 0);
    } finally {
      await unpooledPool.close();
    }
    const native = await GuestPool.start({ threads: 1, limits, log, pager: 'native' });
    let fig: Omit<LocalFork, 'copyMs'>;
    try {
      await native.warm('a', moduleBytes, init);
      await native.warm('b', moduleBytes, init);
      await native.warm('c', otherModule, init);
      const n = 15;
      const ahead: Awaited<ReturnType<typeof fork>>[] = [];
      for (let i = 0; i < n; i++) {
        await pause(50);
        ahead.push(await fork(native, 'a', i));
      }
      const cold: number[] = [];
      for (let i = 0; i < n; i++) cold.push((await fork(native, 'a', i)).running);
      // The thread's spare is of 'a', forked last. Back to back, after idle and memory only, alternated in rounds.
      const nothing: Awaited<ReturnType<typeof fork>>[] = [];
      const afterIdle: Awaited<ReturnType<typeof fork>>[] = [];
      const memoryOnly: Awaited<ReturnType<typeof fork>>[] = [];
      for (let r = 0; r < 3; r++) {
        nothing.push(...await alternate(native, 10, 'b', 'a', 0));
        afterIdle.push(...await alternate(native, 6, 'b', 'a', 20));
        memoryOnly.push(...await alternate(native, 10, 'c', 'a', 0));
      }
      fig = {
        mib,
        backToBackMs: round(median(nothing.map((f) => f.firstInstruction)), 3),
        backToBackParts: parts(nothing),
        afterIdleMs: round(median(afterIdle.map((f) => f.firstInstruction)), 3),
        afterIdleParts: parts(afterIdle),
        pooledForks: nothing.filter((f) => f.pooled).length,
        instanceAheadForks: nothing.filter((f) => f.instanceAhead).length,
        forks: nothing.length,
        backToBackMemoryOnlyMs: round(median(memoryOnly.map((f) => f.firstInstruction)), 3),
        backToBackMemoryOnlyInstanceMs: round(median(memoryOnly.map((f) => f.instanceMs)), 3),
        backToBackUnpooledMs: round(median(unpooled.map((f) => f.firstInstruction)), 3),
        backToBackUnpooledInstanceMs: round(median(unpooled.map((f) => f.instanceMs)), 3),
        madeAheadMs: round(median(ahead.map((f) => f.firstInstruction)), 3),
        cowMs: round(median(ahead.map((f) => f.running)), 3),
        cowColdMs: round(median(cold), 3),
      };
    } finally {
      await native.close();
    }
    const portable = await GuestPool.start({ threads: 1, limits, log, pager: 'portable' });
    const copies: number[] = [];
    try {
      await portable.warm('p', moduleBytes, init);
      for (let i = 0; i < (mib >= 1024 ? 2 : 4); i++) copies.push((await fork(portable, 'p', i)).running);
    } finally {
      await portable.close();
    }
    out.push({ ...fig, copyMs: round(median(copies), 1) });
    say(`  local fork ${mib} MiB measured`);
  }
  return out;
}
