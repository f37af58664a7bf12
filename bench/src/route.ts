/**
 * `npm run bench -- route`: what finding the host for one function call costs
 * the gateway as the fleet grows. A fleet view holds `--hosts` hosts with
 * `--warm` function versions warm each, the called one warm on two of them;
 * one round is the invoker's per-call routing: the call channel's pick
 * (CallChannels.pick) and the spread check (the warm hosts' slots). Reported:
 * the median batch's time per call, for each fleet size.
 */
import { createLogger, type Fabric, type FunctionRecord, type HostRecord, type WarmFunction } from '@flurry/core';
import { CallChannels, FleetView } from '@flurry/gateway';
import { option } from './options.js';
import { round, summarize } from './stats.js';

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const warm = option(args, 'warm', 20, { positive: true });
  const batches = option(args, 'batches', 50, { positive: true });
  const sizes = args.includes('--hosts') ? [option(args, 'hosts', 1000, { positive: true })] : [2, 100, 1000, 10_000];
  const log = createLogger('bench', {}, 'silent');
  const called: FunctionRecord = { tenant: 'bench', name: 'echo', digest: 'a'.repeat(64), size: 1, exports: ['handle'], memory: { initialPages: 1, maximumPages: 1 }, createdAt: 1, updatedAt: 1 };
  const perCallUs: Record<string, number> = {};
  for (const hosts of sizes) {
    // No broker: a channel to a host is tried once, fails, and is not tried again for a while (as a host without a channel).
    const fabric = { link: { connected: true, lastUpAt: 0, lastDownAt: 0 }, nc: { request: () => Promise.reject(new Error('no broker in this benchmark')), info: {} } } as unknown as Fabric;
    const fleet = new FleetView(fabric, 10_000, log);
    for (let i = 0; i < hosts; i++) {
      const versions = Array.from({ length: warm }, (_, j): WarmFunction => (i < 2 && j === 0 ? { tenant: called.tenant, name: called.name, digest: called.digest } : { tenant: 'bench', name: `f${j}`, digest: 'c'.repeat(64) }));
      const record: HostRecord = { id: `h${i}`, pid: 1, hostname: 'bench', startedAt: 1, heartbeatAt: Date.now() + 3_600_000, cores: 2, memoryBytes: 1 << 30, guestSlots: 2, runningGuests: 0, warm: versions, pager: 'portable', draining: false };
      fleet.record(record.id, record);
    }
    const channels = new CallChannels(fabric, fleet, log);
    channels.pick(called);
    await new Promise((resolve) => setTimeout(resolve, 50));
    let slots = 0;
    const route = () => {
      if (channels.pick(called)) throw new Error('no channel can be open in this benchmark');
      for (const h of fleet.liveWarm(called)) if (!h.draining) slots += h.guestSlots;
    };
    const batch = Math.max(10, Math.round(200_000 / hosts));
    const times: number[] = [];
    for (let b = 0; b < batches + 5; b++) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) route();
      if (b >= 5) times.push(((performance.now() - t0) * 1000) / batch);
    }
    if (slots !== 4 * batch * (batches + 5)) throw new Error(`the called version must be warm on 2 hosts of 2 slots, found ${slots / (batch * (batches + 5))} slots`);
    perCallUs[hosts] = round(summarize(times).p50Ms);
    console.log(`routing one call with ${hosts} hosts in the view (${warm} versions warm each): ${perCallUs[hosts]} µs (median of ${batches} batches of ${batch})`);
  }
  return { warm, perCallUs };
}
