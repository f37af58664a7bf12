/**
 * `npm run bench -- plan [--hosts 10000] [--instances 100000] [--per-host 16] [--seed 1] [--json]`:
 * the planners (gateway/src/planning/) on simulated fleets (infra's
 * simulatedFleet: Zipf-skewed instances per host and per service and
 * requests in flight, some drained and draining hosts, varying memory
 * budgets), at 100, 1,000 and 10,000 hosts (or only at --hosts) with 10
 * instances a host (or --instances). Each decision is timed on its own, many
 * times, and so is the plain sort-based reference (planning/reference.ts, the
 * code the planners replaced) in the same run, on the same fleet; both must
 * decide alike. No I/O: the time is the decision's alone.
 */
import { planning } from '@flurry/gateway';
import { simulatedFleet, type SimulatedFleet } from '@flurry/infra';
import type { HostRecord } from '@flurry/core';
import { option } from './options.js';
import { round, summarize } from './stats.js';

const { reference } = planning;

/**
 * Each decision runs until this much time or this many repeats, whichever
 * comes first; at least MIN_REPEATS, unless one call alone takes three
 * budgets (the reference's slowest take tens of seconds at 10,000 hosts).
 */
const FAST_BUDGET = { ms: 1000, repeats: 500 };
const REFERENCE_BUDGET = { ms: 3000, repeats: 100 };
const MIN_REPEATS = 3;
/** Calls of the planner before it is timed (compiled by then); the reference is slower to run and warms up in its first calls. */
const WARM_UP = { ms: 300, repeats: 300 };

const TARGETS = { hosts: 10_000, consolidationMs: 100, placementMs: 1 };

interface Timing {
  p50Ms: number;
  p99Ms: number;
  repeats: number;
}

interface Row {
  decision: string;
  fast: Timing;
  reference: Timing;
  /** Reference median over the planner's median. */
  ratio: number;
}

/** Runs `decide` within `budget`, each call timed on its own; returns the timings and the first result. */
function time<T>(decide: (repeat: number) => T, budget: { ms: number; repeats: number }): { timing: Timing; result: T } {
  const samples: number[] = [];
  let result: T | undefined;
  const start = performance.now();
  for (let i = 0; i < budget.repeats; i++) {
    const spent = performance.now() - start;
    if (spent > budget.ms && (i >= MIN_REPEATS || spent > 3 * budget.ms)) break;
    const t0 = performance.now();
    const r = decide(i);
    samples.push(performance.now() - t0);
    if (i === 0) result = r;
  }
  const s = summarize(samples);
  return { timing: { p50Ms: round(s.p50Ms, 4), p99Ms: round(s.p99Ms, 4), repeats: samples.length }, result: result as T };
}

/** Times the planner and the reference on the same decisions; they must decide alike. */
function compare<T>(decision: string, fast: (repeat: number) => T, slow: (repeat: number) => T): Row {
  // Warmed up first, so that the first decisions timed do not pay for compiling.
  const warm = performance.now() + WARM_UP.ms;
  for (let i = 0; i < WARM_UP.repeats && performance.now() < warm; i++) fast(i);
  const f = time(fast, FAST_BUDGET);
  const r = time(slow, REFERENCE_BUDGET);
  if (JSON.stringify(f.result) !== JSON.stringify(r.result)) throw new Error(`${decision}: the planner and the reference decided differently`);
  return { decision, fast: f.timing, reference: r.timing, ratio: round(r.timing.p50Ms / f.timing.p50Ms, 1) };
}

const ids = (hosts: HostRecord[]) => hosts.map((h) => h.id);

const now = 1_000_000;

/** Every instance of the fleet as consolidation sees it. */
const placedIn = (fleet: SimulatedFleet): planning.PlacedInstance[] => fleet.services.flatMap((s) => s.instances.map((i) => ({
  tenant: s.record.tenant, service: s.record.name, instanceId: i.id, host: i.host, inFlight: s.inFlight.get(i.id) ?? 0, targetConcurrency: s.record.targetConcurrency,
})));

function benchFleet(fleet: SimulatedFleet, packed: SimulatedFleet, perHost: number): { rows: Row[]; facts: Record<string, number | string> } {
  const { hosts, functions, services } = fleet;
  const placed = placedIn(fleet);
  const packedActive = packed.hosts.filter(planning.isActive);
  // At night: every instance idle, every host full but ten that have one free place: too little to empty any host.
  const shortOfOne = new Set(packedActive.filter((h) => planning.instanceCount(h) === perHost).slice(0, 10).map((h) => h.id));
  const packedPlaced = placedIn(packed)
    .filter((i) => !shortOfOne.delete(i.host))
    .map((i) => ({ ...i, inFlight: 0 }));
  const active = hosts.filter(planning.isActive);
  const biggest = services.reduce((a, b) => (b.instances.length > a.instances.length ? b : a));
  const loads = services.map((s) => ({ total: [...s.inFlight.values()].reduce((a, b) => a + b, s.held), held: s.held }));
  const decisions = services.map((s, i) => planning.scalingDecision({ record: s.record, current: s.instances.length, load: loads[i]!, needSince: 0, now, cooldownMs: 30_000, shrinking: false }));
  // One service: the one scaling out most (else the first below its max: its standby parents are placed).
  const outCount = (i: number) => { const a = decisions[i]!.action; return a.kind === 'out' ? a.count : a.kind === 'standby' ? 0 : -1; };
  const one = services.reduce((best, _, i) => (outCount(i) > outCount(best) ? i : best), 0);
  const everHeld = new Set(hosts.map((h) => h.id));

  /** The autoscaler's decision for one service: the step, then where its new instances go or which ones go. */
  const autoscale = (pick: typeof planning.pickHosts, victims: typeof planning.scaleInVictims, extra: Map<string, number>) =>
    (s: SimulatedFleet['services'][number], load: planning.FleetServiceLoad) => {
      const d = planning.scalingDecision({ record: s.record, current: s.instances.length, load, needSince: 0, now, cooldownMs: 30_000, shrinking: false });
      if (d.action.kind === 'out') {
        const chosen = pick(hosts, d.action.count, perHost, extra).hosts;
        for (const h of chosen) extra.set(h.id, (extra.get(h.id) ?? 0) + 1);
        return ids(chosen);
      }
      if (d.action.kind === 'standby') return ids(pick(hosts.filter((h) => planning.hostState(h) !== 'draining'), d.action.room, perHost).hosts);
      if (d.action.kind === 'in') return victims(s.instances, s.instances.length - d.want, s.inFlight, hosts);
      return d.action.kind;
    };
  const allServices = (pick: typeof planning.pickHosts, victims: typeof planning.scaleInVictims) => () => {
    const step = autoscale(pick, victims, new Map());
    return services.map((s, i) => step(s, loads[i]!));
  };

  const rows = [
    compare('warm parent: one placement',
      (i) => ids(planning.warmParentHosts(functions[i % functions.length]!, hosts)),
      (i) => ids(reference.warmParentHostsBySort(functions[i % functions.length]!, hosts, planning.HOSTS_TRIED))),
    compare('service instance: pickHosts for 1',
      () => ids(planning.pickHosts(hosts, 1, perHost).hosts),
      () => ids(reference.pickHostsBySort(hosts, 1, perHost).hosts)),
    compare('service instance: pickHosts for 100',
      () => ids(planning.pickHosts(hosts, 100, perHost).hosts),
      () => ids(reference.pickHostsBySort(hosts, 100, perHost).hosts)),
    compare('service instance: reconcile placement',
      () => ids(planning.serviceInstanceHosts(hosts, biggest.instances)),
      () => ids(reference.serviceInstanceHostsBySort(hosts, biggest.instances, planning.HOSTS_TRIED))),
    compare(`autoscaling: one service (${decisions[one]!.action.kind})`,
      () => autoscale(planning.pickHosts, planning.scaleInVictims, new Map())(services[one]!, loads[one]!),
      () => autoscale(reference.pickHostsBySort, reference.scaleInVictimsBySort, new Map())(services[one]!, loads[one]!)),
    compare(`autoscaling: all ${services.length} services`,
      allServices(planning.pickHosts, planning.scaleInVictims),
      allServices(reference.pickHostsBySort, reference.scaleInVictimsBySort)),
    compare(`scale-in victims: half of ${biggest.instances.length}`,
      () => planning.scaleInVictims(biggest.instances, biggest.instances.length >> 1, biggest.inFlight, hosts),
      () => reference.scaleInVictimsBySort(biggest.instances, biggest.instances.length >> 1, biggest.inFlight, hosts)),
    compare('consolidation: hosts left empty',
      () => ids(planning.emptiedHosts(hosts, placed, everHeld)),
      () => ids(reference.emptiedHostsOneByOne(hosts, placed, everHeld))),
    compare('consolidation: full plan',
      () => planning.planConsolidation(active, placed, perHost),
      () => reference.planConsolidationBySort(active, placed, perHost)),
    compare('consolidation: full plan, idle packed fleet',
      () => planning.planConsolidation(packedActive, packedPlaced, perHost),
      () => reference.planConsolidationBySort(packedActive, packedPlaced, perHost)),
  ];
  const plan = planning.planConsolidation(active, placed, perHost);
  const facts = {
    activeHosts: active.length,
    drainedHosts: hosts.filter((h) => planning.hostState(h) === 'drained').length,
    drainingHosts: hosts.filter((h) => planning.hostState(h) === 'draining').length,
    fullHosts: hosts.filter((h) => planning.instanceCount(h) >= perHost).length,
    consolidationSource: plan ? `${plan.source} (${plan.moves.length} moves)` : 'none',
  };
  return { rows, facts };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const only = option(args, 'hosts', 0);
  const instances = option(args, 'instances', 0);
  const perHost = option(args, 'per-host', 16, { positive: true });
  const seed = option(args, 'seed', 1);
  const sizes = only > 0 ? [only] : [100, 1000, 10_000];
  const results = [];
  for (const hosts of sizes) {
    const fleet = simulatedFleet({ hosts, instances: instances || hosts * 10, perHost, seed });
    // Every host that takes instances full: no host can be emptied, so consolidation looks at every one (and finds none).
    const packed = simulatedFleet({ hosts, instances: hosts * perHost, perHost, seed });
    const placed = fleet.services.reduce((n, s) => n + s.instances.length, 0);
    const { rows, facts } = benchFleet(fleet, packed, perHost);
    console.log(`\n${hosts} hosts, ${placed} instances, ${fleet.services.length} services (${JSON.stringify(facts)}); ms per decision:`);
    console.log(`  ${'decision'.padEnd(46)} ${'p50'.padStart(9)} ${'p99'.padStart(9)}   ${'ref p50'.padStart(9)} ${'ref p99'.padStart(9)} ${'ratio'.padStart(8)}`);
    for (const r of rows) {
      console.log(`  ${r.decision.padEnd(46)} ${r.fast.p50Ms.toFixed(4).padStart(9)} ${r.fast.p99Ms.toFixed(4).padStart(9)}   ${r.reference.p50Ms.toFixed(4).padStart(9)} ${r.reference.p99Ms.toFixed(4).padStart(9)} ${`${r.ratio}×`.padStart(8)}`);
    }
    results.push({ hosts, instances: placed, services: fleet.services.length, perHost, ...facts, decisions: rows });
  }
  const atTarget = results.find((r) => r.hosts === TARGETS.hosts);
  const ms = (name: string) => atTarget?.decisions.find((d) => d.decision.startsWith(name))?.fast.p50Ms;
  const consolidationMs = ms('consolidation: full plan');
  const placementMs = Math.max(ms('warm parent: one placement') ?? NaN, ms('service instance: pickHosts for 1') ?? NaN);
  const targets = {
    consolidation: { targetMs: TARGETS.consolidationMs, p50Ms: consolidationMs ?? null, met: consolidationMs === undefined ? null : consolidationMs < TARGETS.consolidationMs },
    onePlacement: { targetMs: TARGETS.placementMs, p50Ms: atTarget ? placementMs : null, met: atTarget ? placementMs < TARGETS.placementMs : null },
  };
  console.log(`\ntargets at ${TARGETS.hosts} hosts (medians):`);
  if (!atTarget) console.log(`  not measured: run at ${TARGETS.hosts} hosts (the default sizes include it)`);
  else {
    console.log(`  full consolidation plan < ${TARGETS.consolidationMs} ms: ${consolidationMs} ms, ${targets.consolidation.met ? 'met' : 'NOT met'}`);
    console.log(`  one placement (warm parent, one service instance) < ${TARGETS.placementMs} ms: ${placementMs} ms, ${targets.onePlacement.met ? 'met' : 'NOT met'}`);
  }
  return { seed, sizes: results, targets };
}
