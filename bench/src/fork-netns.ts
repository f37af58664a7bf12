/**
 * `npm run bench -- fork --netns [--hosts 8] [--clones 128] [--mib 256] [--share 0.25] [--nats-nodes 1]`:
 * the lazy multicast fork of `fork` (a warm `pattern` parent of --mib MiB
 * forked into --clones clones over --hosts hosts, each clone reading the
 * leading --share of its memory) with every nats node, the gateway and every
 * host in a network namespace of its own (docs/multi-host.md), and in the
 * same run the same fork on loopback with the same number of nats nodes.
 * Reports the time to all clones running and all done on each, the bytes
 * each host exchanged on its veth during the fork (kernel counters, before
 * and after), and the netns / loopback ratios.
 *
 * The driver (this process) reaches the nats node through the namespace
 * entry (a forwarder in a client namespace): its fork requests and the
 * clones' results cross one more hop than on loopback; the pages do not.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { forkAcross, releaseSnapshot, requestSnapshot, roundRobin } from '@flurry/core';
import { LocalFleet, netnsUnavailable, repoRoot, type FleetNetworkKind, type InterfaceBytes } from '@flurry/infra';
import { option } from './options.js';
import { round } from './stats.js';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const MiB = 1024 * 1024;

interface Settings { mib: number; clones: number; hostCount: number; share: number; natsNodes: number; say: (s: string) => void }

interface NetworkFigures {
  network: FleetNetworkKind;
  runningMs: number;
  doneMs: number;
  /** Bytes the memory server published (as on loopback: the pages, once). */
  bytesSent: number;
  /** Per host, what its interface received and sent during the fork (netns only). */
  wire?: { host: string; rxBytes: number; txBytes: number }[];
  failed: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quiet = args.includes('--quiet');
  const s: Settings = {
    mib: option(args, 'mib', 256, { positive: true }),
    clones: option(args, 'clones', 128, { positive: true }),
    hostCount: option(args, 'hosts', 8, { positive: true }),
    share: option(args, 'share', 0.25),
    natsNodes: option(args, 'nats-nodes', 1, { positive: true }),
    say: (line) => { if (!quiet) console.log(line); },
  };
  const why = await netnsUnavailable();
  if (why) throw new Error(`fork --netns needs network namespaces: ${why}`);
  s.say(`fork --netns: parent of ${s.mib} MiB, ${s.clones} clones over ${s.hostCount} hosts (${Math.ceil(s.clones / s.hostCount)} guest threads each), ${s.natsNodes} nats node(s), each clone reads ${s.share * 100}% of the memory`);
  const netns = await forkOn('netns', s);
  const loopback = await forkOn('loopback', s);
  const wire = netns.wire!;
  const perHost = wire.map((w) => w.rxBytes + w.txBytes);
  const cloneHostsRx = wire.filter((w) => w.host !== 'host-1').map((w) => w.rxBytes);
  s.say('');
  for (const w of wire) s.say(`  ${w.host.padEnd(8)} received ${(w.rxBytes / MiB).toFixed(1).padStart(8)} MiB   sent ${(w.txBytes / MiB).toFixed(1).padStart(8)} MiB`);
  s.say(`all running: netns ${netns.runningMs.toFixed(1)} ms, loopback ${loopback.runningMs.toFixed(1)} ms (${(netns.runningMs / loopback.runningMs).toFixed(2)}x)`);
  s.say(`all done:    netns ${netns.doneMs.toFixed(1)} ms, loopback ${loopback.doneMs.toFixed(1)} ms (${(netns.doneMs / loopback.doneMs).toFixed(2)}x)`);
  return {
    bench: 'fork-netns',
    clones: s.clones,
    hosts: s.hostCount,
    natsNodes: s.natsNodes,
    parentMiB: s.mib,
    share: s.share,
    forkMs: round(netns.runningMs, 1),
    doneMs: round(netns.doneMs, 1),
    loopbackForkMs: round(loopback.runningMs, 1),
    loopbackDoneMs: round(loopback.doneMs, 1),
    forkRatio: round(netns.runningMs / loopback.runningMs, 3),
    doneRatio: round(netns.doneMs / loopback.doneMs, 3),
    bytesSent: netns.bytesSent,
    loopbackBytesSent: loopback.bytesSent,
    wireBytesPerHost: Object.fromEntries(wire.map((w, i) => [w.host, perHost[i]])),
    wireBytesPerHostMean: Math.round(perHost.reduce((a, b) => a + b, 0) / perHost.length),
    cloneHostRxBytesMean: Math.round(cloneHostsRx.reduce((a, b) => a + b, 0) / Math.max(1, cloneHostsRx.length)),
    failed: netns.failed + loopback.failed,
  };
}

/** One fleet on `network`: a warm-up fork (every host fetches and compiles the module), then the measured fork. */
async function forkOn(network: FleetNetworkKind, s: Settings): Promise<NetworkFigures> {
  const hosts = Array.from({ length: s.hostCount }, (_, i) => `host-${i + 1}`);
  const threads = Math.ceil(s.clones / s.hostCount);
  const fleet = await LocalFleet.start({
    hosts: s.hostCount,
    network,
    ...(s.natsNodes > 1 ? { natsCluster: s.natsNodes } : {}),
    hostEnv: { LOG_LEVEL: 'warn', FLURRY_GUEST_THREADS: String(threads), FLURRY_CALL_TIMEOUT_MS: '600000', FLURRY_INIT_TIMEOUT_MS: '600000' },
    gatewayEnv: { LOG_LEVEL: 'warn' },
  });
  const nc = await connect(fleet.adminConnectOptions());
  try {
    const deployed = await fetch(`${fleet.url}/v1/functions/pattern`, { method: 'PUT', body: readFileSync(join(repoRoot, 'functions/build/pattern.wasm')) });
    if (!deployed.ok) throw new Error(`deploy failed: ${await deployed.text()}`);
    const digest = ((await deployed.json()) as { function: { digest: string } }).function.digest;
    const initInput = enc({ mib: s.mib, verify: 'all', share: s.share, write: false });
    const cloneInput = enc({ verify: 'all', share: s.share, write: false });
    const fork = async (label: string, n: number, counted: boolean): Promise<NetworkFigures> => {
      const snap = await requestSnapshot(nc, 'host-1', { requestId: `bench-${network}-${label}`, tenant: 'default', name: 'pattern', digest, initInput });
      const before = counted ? await counters(fleet, hosts) : undefined;
      const out = await forkAcross(nc, {
        requestId: `bench-${network}-${label}`, descriptor: snap.descriptor, placement: roundRobin(hosts, n), count: n, inputs: () => cloneInput,
        mode: 'lazy', initInput, timeoutMs: 600_000,
      });
      const after = counted ? await counters(fleet, hosts) : undefined;
      const released = await releaseSnapshot(nc, hosts, 'default', snap.snapshotId);
      return {
        network,
        runningMs: out.runningMs,
        doneMs: out.doneMs,
        bytesSent: released.find((r) => r.server)?.server?.bytesSent ?? 0,
        wire: before && after && hosts.flatMap((h) => {
          const [b, a] = [before.get(h), after.get(h)];
          return b && a ? [{ host: h, rxBytes: a.rxBytes - b.rxBytes, txBytes: a.txBytes - b.txBytes }] : [];
        }),
        failed: out.results.filter((r) => !r.ok).length,
      };
    };
    await fork('warm-up', s.hostCount, false);
    const figures = await fork('fork', s.clones, true);
    s.say(`  ${network.padEnd(9)} running ${figures.runningMs.toFixed(1).padStart(8)} ms   done ${figures.doneMs.toFixed(1).padStart(8)} ms   sent ${(figures.bytesSent / MiB).toFixed(1).padStart(8)} MiB   failed ${figures.failed}`);
    return figures;
  } finally {
    await nc.close();
    await fleet.stop();
  }
}

/** Each host's interface counters; empty on loopback (no interface of its own). */
async function counters(fleet: LocalFleet, hosts: string[]): Promise<Map<string, InterfaceBytes>> {
  const m = new Map<string, InterfaceBytes>();
  for (const h of hosts) {
    const b = await fleet.network.bytes(h);
    if (b) m.set(h, b);
  }
  return m;
}
