/** The planners: placement (invoke, jobs, services, migration), autoscaling and consolidation decisions as pure functions of the fleet's state (docs/autoscaling.md, "Planners"). */
export { bestOf, HOSTS_TRIED } from './best-of.js';
export { emptiedHosts, planConsolidation, type ConsolidationPlan, type PlacedInstance } from './consolidation.js';
export { freeGuestSlots, hostState, instanceCount, isActive, isWarmOn } from './host-states.js';
export { pickHosts, serviceInstanceHosts, type HostChoice } from './instance-hosts.js';
export { coldReduceHost, jobParentHosts, keptParentRank, notResting, slotsLeft, spreadClones, type ParentHostFacts } from './job-hosts.js';
export { initialMemoryOf, memoryRoom, roomFirst } from './memory-room.js';
export { holdsParent, migrationCandidates, migrationTarget, serviceParent } from './migration-target.js';
export * as reference from './reference.js';
export { desiredInstances, scaleInVictims, scalingDecision, type ScalingAction, type ScalingDecision, type ScalingInput, type FleetServiceLoad } from './scaling.js';
export { warmParentHosts } from './warm-parent.js';
