/**
 * A job request's body (`POST /v1/jobs`, docs/jobs.md "API"): its schema
 * (a bad field is a 400 naming it, an unknown one is refused), then the
 * job's spec with its defaults, against the function it names.
 */
import { z } from '@hono/zod-openapi';
import { DATA_NAME_PATTERN, FlurryError, MAX_TASKS, type FunctionRecord, type InitDataRef, type JobSpec } from '@flurry/core';
import { base64Bytes, base64String } from '../base64-field.js';
import type { UploadedData } from '../uploads/uploaded-data.js';

/** The most clones a job may have. */
export const MAX_CLONES = 1024;
const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_RETRIES = 1;

/** An integer from `lo` to `hi`, and the one message for any other value. */
export function intFrom(lo: number, hi: number) {
  const error = `must be an integer from ${lo} to ${hi}`;
  return z.int({ error }).min(lo, { error }).max(hi, { error });
}

/** The name of uploaded data (`PUT /v1/data/:name`), as a body field. */
export const DataName = z.string({ error: 'must be the name of uploaded data (PUT /v1/data/:name)' })
  .regex(DATA_NAME_PATTERN, { error: 'must be the name of uploaded data: 1-128 letters, digits, dots, dashes and underscores, starting with a letter or digit' });

const callbackUrlError = 'must be an http or https URL of at most 2048 characters';

/** The body's fields, as the client sends them (base64 strings for bytes). */
export const JobBody = z.strictObject({
  function: z.string({ error: 'must be a function name' }).min(1, { error: 'must be a function name' }).openapi({ description: 'The function to fork: it exports run(index, count)' }),
  clones: intFrom(1, MAX_CLONES).openapi({ description: 'How many clones to fork' }),
  tasks: intFrom(1, MAX_TASKS).optional()
    .openapi({ description: 'Work units: the clones take task indices as they go and run run_task(task, tasks) for each; every clone gets the whole input (docs/jobs.md, "Tasks")' }),
  init: base64String('The parent\'s init input (default empty)').optional(),
  initData: DataName.optional().openapi({ description: 'Or the name of uploaded data as the init input' }),
  boot: z.enum(['fork', 'cold'], { error: 'must be "fork" or "cold"' }).optional()
    .openapi({ description: '`fork` (default): clones of one snapshotted parent; `cold`: every clone boots and runs init itself' }),
  keepParent: z.boolean({ error: 'must be a boolean' }).optional().openapi({ description: 'Keep the parent for later jobs with the same function version and init (default true)' }),
  input: base64String('Every clone\'s input (default empty)').optional(),
  inputs: z.array(base64String('One clone\'s input'), { error: 'must be an array of base64 strings' }).optional()
    .openapi({ description: 'Or one input per clone' }),
  timeoutMs: intFrom(1, 86_400_000).optional().openapi({ description: `Each clone's time limit (default ${DEFAULT_TIMEOUT_MS})` }),
  retries: intFrom(0, 10).optional().openapi({ description: `Attempts after a failed one, per clone (default ${DEFAULT_RETRIES})` }),
  reduce: z.boolean({ error: 'must be a boolean' }).optional().openapi({ description: 'Run reduce(count) over the outputs (default: when the function exports it)' }),
  callbackUrl: z.url({ protocol: /^https?$/, error: callbackUrlError }).max(2048, { error: callbackUrlError }).optional()
    .openapi({ description: 'Where to POST the job\'s outcome when it ends, signed (docs/jobs.md, "Callbacks")' }),
}).superRefine((b, ctx) => {
  if (b.init !== undefined && b.initData !== undefined) ctx.addIssue({ code: 'custom', message: 'send "init" or "initData", not both' });
  if (b.input !== undefined && b.inputs !== undefined) ctx.addIssue({ code: 'custom', message: 'send "input" or "inputs", not both' });
  if (b.tasks !== undefined && b.inputs !== undefined) ctx.addIssue({ code: 'custom', message: 'a job with "tasks" gives every clone the whole "input"; "inputs" is for the static split' });
  if (b.inputs !== undefined && b.inputs.length !== b.clones) {
    ctx.addIssue({ code: 'custom', message: `"inputs" has ${b.inputs.length} entries; it must have one per clone (${b.clones})` });
  }
}).openapi('JobBody', { description: 'A job to run' });
export type JobBody = z.infer<typeof JobBody>;

function bad(message: string): FlurryError {
  return new FlurryError('bad_request', message);
}

/** The uploaded data `initData` names, as the spec keeps it (the version uploaded now). */
export async function initDataRef(data: UploadedData | undefined, tenant: string, name: string): Promise<InitDataRef> {
  if (!data) throw bad('this gateway keeps no job data: "initData" is not available');
  return data.ref(tenant, name);
}

/** The job's spec: the body with its defaults, refused when the function cannot be forked (no `run`, or no `run_task` for tasks) or reduced when asked. */
export function specOf(b: JobBody, fn: FunctionRecord, initData: InitDataRef | undefined): JobSpec {
  if (b.tasks !== undefined && !fn.exports.includes('run_task')) {
    throw bad(`function "${fn.name}" exports no run_task(task, tasks): a job with "tasks" needs it (docs/guest-abi.md, "Tasks"); without "tasks" its clones run run(index, count)`);
  }
  if (b.tasks === undefined && !fn.exports.includes('run')) throw bad(`function "${fn.name}" exports no run(index, count): it cannot be forked into clones`);
  const hasReduce = fn.exports.includes('reduce');
  if (b.reduce === true && !hasReduce) throw bad(`function "${fn.name}" exports no reduce(count)`);
  return {
    init: base64Bytes(b.init),
    ...(initData ? { initData } : {}),
    boot: b.boot ?? 'fork',
    keepParent: b.keepParent ?? true,
    input: base64Bytes(b.input),
    inputs: b.inputs?.map(base64Bytes),
    timeoutMs: b.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    retries: b.retries ?? DEFAULT_RETRIES,
    reduce: b.reduce ?? hasReduce,
    ...(b.tasks !== undefined ? { tasks: b.tasks } : {}),
  };
}
