/** The public surface of @flurry/sdk: the client, its record types and its errors. */
export { Flurry, type FlurryOptions } from './client.js';
export { FunctionsApi, type InvokeBody, type InvokeOptions } from './functions.js';
export { HostsApi, isFullHostRecord } from './hosts.js';
export { DataApi } from './data.js';
export { ServicesApi, type MigrateOptions, type ServiceScale, type ServiceSpec } from './services.js';
export {
  JobHandle,
  JobsApi,
  isTerminalState,
  type JobData,
  type JobEvent,
  type JobEventBase,
  type JobEventKind,
  type JobResult,
  type JobSpec,
  type WaitOptions,
} from './jobs.js';
export { InvokeResponse } from './invoke-response.js';
export type { GuestLogLine, JobLogOptions, LogOptions } from './logs.js';
export { verifyCallbackSignature, type VerifyCallbackOptions } from './callback-signature.js';
export type { RetryOptions } from './retry.js';
export type { QueryInit } from './transport.js';
export { FlurryApiError, FlurryConnectionError, FlurryJobError, FlurryTimeoutError } from './errors.js';
export type {
  CallbackOutcome,
  CloneDetail,
  ConsolidationState,
  DataRecord,
  ErrorCode,
  FunctionLimits,
  FunctionRecord,
  HostCapacity,
  HostDrainReport,
  HostMove,
  HostRecord,
  JobBody,
  JobErrorInfo,
  JobRecord,
  JobState,
  MigrationReport,
  PageCounts,
  ServiceInstance,
  ServiceRecord,
  WarmFunction,
} from './types.js';
