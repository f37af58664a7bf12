/**
 * `@flurry/core/basics`: the part of core a guest thread needs (errors, page
 * sizes, the clone ABI's names), without the rest: the whole package's import
 * (zod schemas, NATS, OpenTelemetry) cost each new guest thread about 250 ms.
 */
export * from './bytes.js';
export * from './errors.js';
export * from './page-sizes.js';
export { CLONE_MEMORY_IMPORT, GLOBAL_EXPORT_PREFIX } from './wasm-module.js';
