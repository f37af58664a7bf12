/** The public surface of @flurry/sdk: the client, its record types and its errors. */
export { Flurry, type FlurryOptions } from './client.js';
export { FunctionsApi, type InvokeBody, type InvokeOptions } from './functions.js';
export { HostsApi } from './hosts.js';
export { InvokeResponse } from './invoke-response.js';
export type { QueryInit } from './transport.js';
export { FlurryApiError, FlurryConnectionError, FlurryTimeoutError } from './errors.js';
export type { ErrorCode, FunctionRecord, HostRecord, WarmFunction } from './types.js';
