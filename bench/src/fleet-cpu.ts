/**
 * Where the machine's CPU went while a job ran (Linux /proc): each fleet
 * process's CPU time and page faults (a host's main thread apart from its
 * guest threads), this bench process, the rest of the machine (other
 * processes: on a shared machine, other people's work), and the time both
 * cores sat idle, between two readings. Clock ticks are 10 ms: figures are
 * good to a few tens of ms over a job of seconds.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { LocalFleet } from '@flurry/infra';

const TICK_MS = 10;

interface ProcessRef { name: string; pid: number; tid?: number }
interface Counters { cpuMs: number; minorFaults: number; majorFaults: number }
export interface CpuReading { at: number; busyMs: number; idleMs: number; procs: Map<string, Counters>; selfMs: number }

/** Fields of /proc/<pid>[/task/<tid>]/stat after the command's closing parenthesis, from `state` (field 3) on. */
function statFields(path: string): string[] | undefined {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process or thread has exited
  }
}

function countersOf(ref: ProcessRef): Counters | undefined {
  const f = statFields(ref.tid === undefined ? `/proc/${ref.pid}/stat` : `/proc/${ref.pid}/task/${ref.tid}/stat`);
  // Fields 10 minflt, 12 majflt, 14 utime, 15 stime (1-based), here from field 3.
  return f && { cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS, minorFaults: Number(f[7]), majorFaults: Number(f[9]) };
}

/** The fleet's processes: nats-server (a child of this process), the gateway, and each host, whole and its main thread. */
export function fleetProcesses(fleet: LocalFleet): ProcessRef[] {
  const refs: ProcessRef[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(`/proc/${entry}/stat`);
    const comm = (() => { try { return readFileSync(`/proc/${entry}/comm`, 'utf8').trim(); } catch { return ''; } })();
    if (f && Number(f[1]) === process.pid && comm === 'nats-server') refs.push({ name: 'nats-server', pid: Number(entry) });
  }
  if (fleet.gateway.process.pid) refs.push({ name: 'gateway', pid: fleet.gateway.process.pid });
  for (const h of fleet.hosts) {
    const pid = h.process.pid;
    if (!pid) continue;
    const id = String(h.ready.hostId);
    refs.push({ name: id, pid }, { name: `${id} main thread`, pid, tid: pid });
  }
  return refs;
}

export function readCpu(refs: ProcessRef[]): CpuReading {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const procs = new Map<string, Counters>();
  for (const r of refs) {
    const c = countersOf(r);
    if (c) procs.set(r.name, c);
  }
  const self = process.cpuUsage();
  return { at: performance.now(), busyMs: (total - idle) * TICK_MS, idleMs: idle * TICK_MS, procs, selfMs: (self.user + self.system) / 1000 };
}

export interface CpuSpent {
  wallMs: number;
  /** CPU time of both cores that no process used. */
  idleMs: number;
  /** Per fleet process (and `<host> guest threads` = the host less its main thread), the bench, and everything else. */
  cpuMs: Record<string, number>;
  minorFaults: Record<string, number>;
}

export function cpuBetween(a: CpuReading, b: CpuReading): CpuSpent {
  const cpuMs: Record<string, number> = {};
  const minorFaults: Record<string, number> = {};
  let fleet = 0;
  for (const [name, end] of b.procs) {
    const start = a.procs.get(name);
    if (!start) continue;
    cpuMs[name] = end.cpuMs - start.cpuMs;
    if (!name.endsWith(' main thread')) {
      minorFaults[name] = end.minorFaults - start.minorFaults;
      fleet += cpuMs[name];
    }
  }
  for (const name of Object.keys(cpuMs)) {
    const main = cpuMs[`${name} main thread`];
    if (main !== undefined) cpuMs[`${name} guest threads`] = cpuMs[name]! - main;
  }
  cpuMs.bench = Math.round(b.selfMs - a.selfMs);
  cpuMs.others = Math.max(0, b.busyMs - a.busyMs - fleet - cpuMs.bench);
  return { wallMs: Math.round(b.at - a.at), idleMs: b.idleMs - a.idleMs, cpuMs, minorFaults };
}
