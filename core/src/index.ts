/** @flurry/core: what every Flurry process shares. */
export * from './protocol.js';
export * from './codec.js';
export * from './errors.js';
export * from './config.js';
export * from './log.js';
export * from './ids.js';
export * from './fabric.js';
export * from './nats-auth.js';
export * from './kv-keys.js';
export * from './broker-link.js';
export * from './until-stored.js';
export * from './wasm-module.js';
export * from './snapshot.js';
export * from './fork-client.js';
export * from './reduce-input.js';
export * from './data-objects.js';
