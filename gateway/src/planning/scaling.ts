/**
 * The autoscaler's decisions (docs/autoscaling.md, "Autoscaler"): how many
 * instances a service's load asks for, what to do about it now, and which
 * instances a scale-in removes.
 *
 *   want = clamp(ceil((in flight + held) / targetConcurrency), min, max)
 */
import type { HostRecord, ServiceInstanceRecord, ServiceRecord } from '@flurry/core';
import { instanceCount } from './host-states.js';

/** A service's load, fleet-wide (services/fleet-load.ts). */
export interface FleetServiceLoad {
  /** Requests in flight to its instances plus requests held for one. */
  total: number;
  held: number;
}

/** The number of instances a service's load asks for (at least one while requests are held). */
export function desiredInstances(record: Pick<ServiceRecord, 'min' | 'max' | 'targetConcurrency'>, load: FleetServiceLoad): number {
  const byLoad = Math.ceil(load.total / record.targetConcurrency);
  return Math.min(record.max, Math.max(record.min, byLoad, load.held > 0 ? 1 : 0));
}

export interface ScalingInput {
  record: Pick<ServiceRecord, 'min' | 'max' | 'targetConcurrency'>;
  /** Instances it has now. */
  current: number;
  load: FleetServiceLoad;
  /** When its load last asked for at least its current instances (undefined: not seen yet). */
  needSince: number | undefined;
  now: number;
  cooldownMs: number;
  /** A scale-in of it is under way already. */
  shrinking: boolean;
}

export type ScalingAction =
  /** Make `count` more instances. */
  | { kind: 'out'; count: number }
  /** Below max: keep its parent warm where the next `room` instances would go. */
  | { kind: 'standby'; room: number }
  /** The load has asked for fewer for a whole cool-down: remove the excess. */
  | { kind: 'in' }
  | { kind: 'none' };

export interface ScalingDecision {
  want: number;
  /** The new `needSince` to remember. */
  needSince: number;
  action: ScalingAction;
}

/**
 * One autoscaling step for one service: scale out at once when the load asks
 * for more; scale in only once it has asked for fewer for a whole cool-down.
 * O(1).
 */
export function scalingDecision(s: ScalingInput): ScalingDecision {
  const want = desiredInstances(s.record, s.load);
  const needSince = want >= s.current || s.needSince === undefined ? s.now : s.needSince;
  let action: ScalingAction = { kind: 'none' };
  if (want > s.current) action = { kind: 'out', count: want - s.current };
  // At any count, not only at max: a service below its max scales in too (its standby parents follow on the next step).
  else if (want < s.current && s.needSince !== undefined && s.now - s.needSince >= s.cooldownMs && !s.shrinking) action = { kind: 'in' };
  else if (s.current < s.record.max) action = { kind: 'standby', room: s.record.max - s.current };
  return { want, needSince, action };
}

/**
 * The `count` instances a scale-in removes: idle ones first (fewest requests
 * in flight), on the hosts holding the fewest instances (emptying hosts for
 * consolidation), newest first; remaining ties keep the instances' order.
 * O(hosts + instances × log instances).
 */
export function scaleInVictims(instances: readonly ServiceInstanceRecord[], count: number, inFlight: ReadonlyMap<string, number>, hosts: readonly HostRecord[]): string[] {
  const hostLoad = new Map<string, number>();
  for (const i of instances) hostLoad.set(i.host, 0);
  for (const h of hosts) if (hostLoad.has(h.id)) hostLoad.set(h.id, instanceCount(h));
  const keyed = instances.map((inst) => ({ inst, load: inFlight.get(inst.id) ?? 0, hostLoad: hostLoad.get(inst.host)! }));
  keyed.sort((a, b) => a.load - b.load || a.hostLoad - b.hostLoad || b.inst.createdAt - a.inst.createdAt);
  return keyed.slice(0, Math.max(0, count)).map((k) => k.inst.id);
}
