/** @flurry/worker-host: the worker host process and its parts, for tests and benchmarks. */
export { WorkerHost } from './host.js';
export { loadHostConfig, type HostConfig } from './config.js';
export { GuestPool } from './guest/guest-pool.js';
