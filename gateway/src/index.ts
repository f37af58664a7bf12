/** @flurry/gateway: the HTTP API and the fleet's scheduler, for tests and benchmarks. */
export { Gateway } from './gateway.js';
export { createApp, type AppDeps } from './app.js';
export { loadGatewayConfig, type GatewayConfig } from './config.js';
export { KeyRing, type Caller } from './auth/key-ring.js';
export * as planning from './planning/index.js';
export { FleetView } from './fleet-view.js';
export { CallChannels } from './functions/call-channels.js';
