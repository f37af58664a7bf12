/**
 * The records the API answers with, as the document declares them. Each is
 * strict: a field the gateway sends that is not declared here fails the
 * integration suites' response check (test/helpers/openapi-responses.ts),
 * so the document cannot fall behind the code. Times are milliseconds since
 * the Unix epoch; durations milliseconds; sizes bytes.
 */
import { z } from '@hono/zod-openapi';
import { ERROR_CODES } from '../http-errors.js';

const int = z.number().int();

/** A function's own limits (functions/function-limits.ts checks them against the fleet's caps). */
export const FunctionLimits = z.strictObject({
  timeoutMs: int.positive().optional().openapi({ description: 'A call\'s (or service request\'s) time limit in ms, at most the gateway\'s FLURRY_INVOKE_TIMEOUT_MS' }),
  memoryBytes: int.positive().optional().openapi({ description: 'Most linear memory its module may declare, at most FLURRY_MAX_GUEST_MEMORY: a module declaring more is refused' }),
  outputBytes: int.positive().optional().openapi({ description: 'Most bytes a call may answer, at most FLURRY_MAX_OUTPUT' }),
}).openapi('FunctionLimits', { description: 'A function\'s own limits instead of the fleet\'s defaults; one left out is the default' });

export const FunctionRecord = z.strictObject({
  tenant: z.string(),
  name: z.string(),
  digest: z.string().openapi({ description: 'SHA-256 of the module bytes, lower-case hex' }),
  size: int.openapi({ description: 'Module size in bytes' }),
  exports: z.array(z.string()).openapi({ description: 'Entry points the module exports (init, handle, run, reduce, ...)' }),
  memory: z.strictObject({ initialPages: int, maximumPages: int }).openapi({ description: 'Linear memory size in 64 KiB wasm pages' }),
  limits: FunctionLimits.optional().openapi({ description: 'Its own limits (PATCH /v1/functions/{name}); absent: the fleet\'s defaults. Kept across redeploys' }),
  createdAt: z.number(),
  updatedAt: z.number(),
}).openapi('FunctionRecord', { description: 'A deployed function' });

const hostState = z.enum(['active', 'draining', 'drained']).openapi('HostState', {
  description: '`active` takes work; `draining` is being emptied; `drained` holds nothing and takes no work',
});

const capacity = {
  id: z.string(),
  startedAt: z.number(),
  heartbeatAt: z.number(),
  cores: int,
  memoryBytes: z.number(),
  guestSlots: int.openapi({ description: 'Guest threads in the host\'s pool' }),
  runningGuests: int.openapi({ description: 'Guest calls running now' }),
  pager: z.enum(['userfaultfd', 'portable']).openapi({ description: '`userfaultfd` when the native pager works on the host' }),
  draining: z.boolean().openapi({ description: 'True once the host has begun draining, or is drained' }),
  state: hostState.optional(),
  releasable: z.boolean().optional().openapi({ description: 'Drained, idle and holding nothing: the machine may be released' }),
  memoryBudget: z.strictObject({ budgetBytes: z.number(), usedBytes: z.number() }).optional()
    .openapi({ description: 'The host\'s memory budget and what its parents, page caches and instances use of it' }),
};

export const HostCapacity = z.strictObject(capacity).openapi('HostCapacity', {
  description: 'What every caller sees of a worker host: its capacity (a user key sees no more)',
});

export const WarmFunction = z.strictObject({ tenant: z.string(), name: z.string(), digest: z.string() })
  .openapi('WarmFunction', { description: 'A function a host holds a warm parent of' });

export const HostRecord = z.strictObject({
  ...capacity,
  pid: int,
  hostname: z.string(),
  warm: z.array(WarmFunction),
  parents: z.array(z.strictObject({
    tenant: z.string(), function: z.string(), moduleDigest: z.string(), initDigest: z.string(), snapshotId: z.string(),
    memoryBytes: z.number(), holders: int, idleSince: z.number().optional(),
  })).optional().openapi({ description: 'Parents of jobs kept for later jobs with the same function version and init' }),
  pageCaches: z.array(z.string()).optional().openapi({ description: 'Snapshots whose pages this host caches for clones' }),
  stateReason: z.string().optional().openapi({ description: 'Why the host is draining or drained' }),
  instances: z.array(z.strictObject({ tenant: z.string(), service: z.string(), instanceId: z.string(), requests: int, migrating: z.boolean().optional() }))
    .optional().openapi({ description: 'The service instances on the host' }),
  rejectedMessages: z.record(z.string(), int).optional().openapi({ description: 'NATS messages the host dropped as malformed, by kind' }),
  brokerOutages: int.optional().openapi({ description: 'How many times the host lost the broker connection' }),
}).openapi('HostRecord', { description: 'A worker host as an admin key sees it: its capacity and what it holds for every tenant' });

export const ErrorInfo = z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() })
  .openapi('ErrorInfo', { description: 'A platform error as a job or clone record carries it' });
