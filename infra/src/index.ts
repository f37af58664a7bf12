/** @flurry/infra: starting nats-server, Flurry's services and whole local fleets. */
export * from './nats-server.js';
export * from './free-port.js';
export * from './nats-config.js';
export * from './nats-cluster.js';
export * from './nats-permissions.js';
export * from './services.js';
export * from './local-fleet.js';
export * from './datasets.js';
export * from './room-ledger.js';
export * from './seeded-random.js';
export * from './simulated-fleet.js';
export * from './fleet-network.js';
export * from './netns/availability.js';
export * from './netns/network.js';
export * from './netns/entry.js';
