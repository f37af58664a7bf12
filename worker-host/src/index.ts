/** @flurry/worker-host: the worker host process and its parts, for tests and benchmarks. */
export { WorkerHost } from './host.js';
export { loadHostConfig, type HostConfig } from './config.js';
export {
  GuestPool,
  GuestCallError,
  type RemoteSnapshot,
  type CallResult,
  type GuestLimits,
  type GuestLogLine,
  type HttpRequestData,
  type PagerMode,
  type WarmInfo,
} from './guest/guest-pool.js';
export { frameReduceInput } from '@flurry/core';
export type { SnapshotImage } from './guest/snapshot-image.js';
export type { MemoryMode, MemoryStats } from './guest/snapshot-memory.js';
export { probeFaults, type FaultFigures, type FaultTiming } from './native/fault-probe.js';
