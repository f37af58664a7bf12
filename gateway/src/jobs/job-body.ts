/**
 * A job request's body (`POST /v1/jobs`, docs/jobs.md "API"): parsed and
 * checked field by field (a bad one is a 400 naming it), then turned into the
 * job's spec with its defaults, against the function it names.
 */
import { FlurryError, type FunctionRecord, type InitDataRef, type JobBoot, type JobSpec } from '@flurry/core';
import { base64Field } from '../base64-field.js';
import { parseCallbackUrl } from '../callbacks/callback-address.js';
import { UploadedData } from '../uploads/uploaded-data.js';

/** The most clones a job may have. */
export const MAX_CLONES = 1024;
const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_RETRIES = 1;

/** The body's fields, as the client sent them (base64 strings for bytes). */
export interface JobBody {
  function: string;
  clones: number;
  init?: string;
  initData?: string;
  boot?: JobBoot;
  keepParent?: boolean;
  input?: string;
  inputs?: string[];
  timeoutMs?: number;
  retries?: number;
  reduce?: boolean;
  callbackUrl?: string;
}

function bad(message: string): FlurryError {
  return new FlurryError('bad_request', message);
}

/** The body, every field checked: a bad one throws `bad_request` naming it; unknown fields are refused. */
export function parseJobBody(raw: Uint8Array): JobBody {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    throw bad('the body must be a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('the body must be a JSON object');
  const b = v as Record<string, unknown>;
  const known = new Set(['function', 'clones', 'init', 'initData', 'boot', 'keepParent', 'input', 'inputs', 'timeoutMs', 'retries', 'reduce', 'callbackUrl']);
  for (const k of Object.keys(b)) if (!known.has(k)) throw bad(`unknown field "${k}"`);
  if (typeof b.function !== 'string' || b.function.length === 0) throw bad('"function" must be a function name');
  if (typeof b.clones !== 'number' || !Number.isInteger(b.clones) || b.clones < 1 || b.clones > MAX_CLONES) throw bad(`"clones" must be an integer from 1 to ${MAX_CLONES}`);
  for (const k of ['init', 'input'] as const) if (b[k] !== undefined && typeof b[k] !== 'string') throw bad(`"${k}" must be a base64 string`);
  if (b.initData !== undefined) {
    if (typeof b.initData !== 'string') throw bad('"initData" must be the name of uploaded data (PUT /v1/data/:name)');
    if (b.init !== undefined) throw bad('send "init" or "initData", not both');
    UploadedData.checkName(b.initData);
  }
  if (b.boot !== undefined && b.boot !== 'fork' && b.boot !== 'cold') throw bad('"boot" must be "fork" or "cold"');
  if (b.keepParent !== undefined && typeof b.keepParent !== 'boolean') throw bad('"keepParent" must be a boolean');
  if (b.inputs !== undefined) {
    if (!Array.isArray(b.inputs) || b.inputs.some((x) => typeof x !== 'string')) throw bad('"inputs" must be an array of base64 strings');
    if (b.inputs.length !== b.clones) throw bad(`"inputs" has ${b.inputs.length} entries; it must have one per clone (${b.clones})`);
    if (b.input !== undefined) throw bad('send "input" or "inputs", not both');
  }
  if (b.timeoutMs !== undefined && (typeof b.timeoutMs !== 'number' || !Number.isInteger(b.timeoutMs) || b.timeoutMs < 1 || b.timeoutMs > 24 * 3600_000)) throw bad('"timeoutMs" must be an integer from 1 to 86400000');
  if (b.retries !== undefined && (typeof b.retries !== 'number' || !Number.isInteger(b.retries) || b.retries < 0 || b.retries > 10)) throw bad('"retries" must be an integer from 0 to 10');
  if (b.reduce !== undefined && typeof b.reduce !== 'boolean') throw bad('"reduce" must be a boolean');
  if (b.callbackUrl !== undefined) parseCallbackUrl(b.callbackUrl);
  // Each field checked above: what is left is its type.
  return {
    function: b.function, clones: b.clones,
    init: b.init as string | undefined, initData: b.initData, boot: b.boot as JobBoot | undefined, keepParent: b.keepParent as boolean | undefined,
    input: b.input as string | undefined, inputs: b.inputs as string[] | undefined, timeoutMs: b.timeoutMs as number | undefined,
    retries: b.retries as number | undefined, reduce: b.reduce as boolean | undefined, callbackUrl: b.callbackUrl as string | undefined,
  };
}

/** An absent input is empty. */
function base64(field: string, s: string | undefined): Uint8Array {
  return s === undefined ? new Uint8Array(0) : base64Field(field, s);
}

/** The uploaded data `initData` names, as the spec keeps it (the version uploaded now). */
export async function initDataRef(data: UploadedData | undefined, tenant: string, name: string): Promise<InitDataRef> {
  if (!data) throw bad('this gateway keeps no job data: "initData" is not available');
  return data.ref(tenant, name);
}

/** The job's spec: the body with its defaults, refused when the function cannot be forked (no `run`) or reduced when asked. */
export function specOf(b: JobBody, fn: FunctionRecord, initData: InitDataRef | undefined): JobSpec {
  if (!fn.exports.includes('run')) throw bad(`function "${fn.name}" exports no run(index, count): it cannot be forked into clones`);
  const hasReduce = fn.exports.includes('reduce');
  if (b.reduce === true && !hasReduce) throw bad(`function "${fn.name}" exports no reduce(count)`);
  return {
    init: base64('init', b.init),
    ...(initData ? { initData } : {}),
    boot: b.boot ?? 'fork',
    keepParent: b.keepParent ?? true,
    input: base64('input', b.input),
    inputs: b.inputs?.map((s, i) => base64(`inputs[${i}]`, s)),
    timeoutMs: b.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    retries: b.retries ?? DEFAULT_RETRIES,
    reduce: b.reduce ?? hasReduce,
  };
}
