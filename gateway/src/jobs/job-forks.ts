/**
 * What a job asks the hosts to run, as fork requests: a batch of its clones
 * (results to the results stream, one per index; failures to the failures
 * stream; progress; large inputs and outputs through the job's objects) and
 * its reduce (the result to an inbox of the coordinator). Every request names
 * the job (ForkRequest.jobId), so that a cancel naming it stops its clones.
 */
import { randomBytes } from 'node:crypto';
import { encode, JobObjects, JobSubjects, LARGE_JOB_DATA_BYTES, type ForkRequest, type JobRecord, type JobSpec, type KeptRun, type TraceContext } from '@flurry/core';
import type { JobStore } from './job-store.js';

/** Time a clone (or the reduce) may take to start (queue, memory) on top of its own time limit. */
export const START_GRACE_MS = 30_000;

/** What every fork request of a job is made of. */
export interface JobForkFacts {
  record: JobRecord;
  spec: JobSpec;
  /** The encoded snapshot descriptor (of the parent, or of the cold boot). */
  descriptor: Uint8Array;
  /** Object names of clone inputs too large for a fork message, by index. */
  inputObjects: ReadonlyMap<number, string>;
  /** The trace of the request that submitted the job, for the fork requests' headers. */
  trace?: TraceContext;
}

/**
 * The id of one attempt sent to one host. Unguessable: a result counts only
 * with the request id of an attempt sent for its index (CloneAttempts).
 */
export function attemptRequestId(jobId: string, seq: number): string {
  return `${jobId}.${seq}.${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
}

/** A job with `boot: "cold"` has no parent: each clone boots from the module with the job's init input. */
export function isColdBoot(spec: JobSpec | undefined): boolean {
  return spec?.boot === 'cold';
}

function coldBoot(spec: JobSpec): Pick<ForkRequest, 'mode' | 'initInput' | 'initData'> {
  return isColdBoot(spec) ? { mode: 'cold', initInput: spec.init, initData: spec.initData } : {};
}

/** How many outputs the job has: one per task in a task job, else one per clone. */
export function outputCount(record: JobRecord): number {
  return record.tasks?.total ?? record.clones;
}

/** The fork request of clones `indices` of the job on `host` (prefetching the snapshot's working set on any host but the parent's). */
export function cloneForkRequest(job: JobForkFacts, host: string, requestId: string, indices: number[]): ForkRequest {
  const { record, spec, inputObjects } = job;
  const { tenant, id } = record;
  return {
    requestId,
    jobId: id,
    descriptor: job.descriptor,
    clones: indices.map((index) => ({ index, input: inputObjects.has(index) ? new Uint8Array(0) : (spec.inputs?.[index] ?? spec.input) })),
    count: record.clones,
    resultSubject: JobSubjects.results(tenant, id),
    objects: {
      store: JobObjects,
      inputs: Object.fromEntries(indices.filter((i) => inputObjects.has(i)).map((i) => [i, inputObjects.get(i)!])),
      outputPrefix: `${tenant}/${id}/out`,
      minOutputBytes: LARGE_JOB_DATA_BYTES,
    },
    perIndexResults: true,
    failSubject: JobSubjects.attemptFailures(tenant, requestId),
    progressSubject: JobSubjects.progress(tenant, id),
    prefetch: !isColdBoot(spec) && host !== record.parentHost,
    timeoutMs: spec.timeoutMs,
    ...(spec.tasks ? { tasks: { count: spec.tasks, subject: JobSubjects.tasks(tenant, id), ...(keepsTaskOutputs(job, host) && { keepOutputs: true }) } } : {}),
    ...coldBoot(spec),
  };
}

/**
 * Whether `host` keeps its clones' task outputs for the job's reduce: it is the parent's, where the reduce
 * runs (a cold job reduces wherever a slot is free). Its reduce request then names them instead of sending them.
 */
export function keepsTaskOutputs(job: Pick<JobForkFacts, 'record' | 'spec'>, host: string): boolean {
  return job.spec.tasks !== undefined && job.spec.reduce && !isColdBoot(job.spec) && host === job.record.parentHost;
}

/** The output object a clone attempt writes for `index` (a task job's run: `<first>-<last>`; its host names it from the request's outputPrefix). */
export function cloneOutputObject(record: Pick<JobRecord, 'tenant' | 'id'>, index: number | string, requestId: string): string {
  return `${record.tenant}/${record.id}/out/${index}/${requestId}`;
}

/** Where a reduce input too large for a fork message is kept. */
export function reduceInputObject(record: JobRecord): string {
  return `${record.tenant}/${record.id}/reduce-input`;
}

/** The most a msgpack bin header takes (bin 32: a type byte and a 4-byte length). */
const MSGPACK_BIN32_HEADER = 5;

/** Room left in a reduce result's message for its fields besides the output. */
const RESULT_FIELDS_BYTES = 64 * 1024;

/**
 * The fork request of the job's reduce, `reduce(count)` once, its result to
 * `inbox`, for a broker whose largest message is `maxPayload` bytes: its
 * framed input and its output go in the messages whenever they fit, else
 * through the job's objects (`large`: the input is to be stored as
 * reduceInputObject first). Through the object store, each would be written
 * and read back once more (an 860 KB BLAST reduce spent 100–300 ms so).
 */
export function reduceForkRequest(job: JobForkFacts, inbox: string, framed: Uint8Array, maxPayload: number, kept: KeptRun[] = []): { request: ForkRequest; large: boolean } {
  const minOutputBytes = Math.max(0, maxPayload - RESULT_FIELDS_BYTES);
  // Sized without encoding the input (0.9 MB for BLAST) a second time: the request without it, plus its bytes
  // and their largest msgpack header.
  const fields = encode(reduceRequest(job, inbox, new Uint8Array(0), false, minOutputBytes, kept)).length;
  if (fields + framed.length + MSGPACK_BIN32_HEADER <= maxPayload) return { request: reduceRequest(job, inbox, framed, false, minOutputBytes, kept), large: false };
  return { request: reduceRequest(job, inbox, framed, true, minOutputBytes, kept), large: true };
}

/** `kept`: runs of task outputs the reduce's host kept (ForkRequest.keptOutputs); `framed` holds the other tasks' frames. */
function reduceRequest(job: JobForkFacts, inbox: string, framed: Uint8Array, large: boolean, minOutputBytes: number, kept: KeptRun[]): ForkRequest {
  const { record, spec } = job;
  const { tenant, id } = record;
  return {
    requestId: `${id}.reduce.${Date.now().toString(36)}`,
    jobId: id,
    descriptor: job.descriptor,
    clones: [{ index: 0, input: large ? new Uint8Array(0) : framed }],
    count: outputCount(record),
    resultSubject: inbox,
    prefetch: false,
    entry: 'reduce',
    timeoutMs: spec.timeoutMs,
    ...coldBoot(spec),
    ...(kept.length > 0 && { keptOutputs: kept }),
    objects: { store: JobObjects, inputs: large ? { 0: reduceInputObject(record) } : {}, outputPrefix: `${tenant}/${id}/reduce-out`, minOutputBytes },
  };
}

/**
 * Puts the job's inputs too large for a fork message in the object store
 * (again on resume: the same bytes) and returns their object names by index.
 */
export async function storeLargeInputs(store: JobStore, record: JobRecord, spec: JobSpec): Promise<Map<number, string>> {
  const { tenant, id } = record;
  const objects = new Map<number, string>();
  if (spec.input.length >= LARGE_JOB_DATA_BYTES) {
    await store.putBlob(`${tenant}/${id}/input`, spec.input);
    for (let i = 0; i < record.clones; i++) objects.set(i, `${tenant}/${id}/input`);
  }
  for (const [i, input] of (spec.inputs ?? []).entries()) {
    if (input.length < LARGE_JOB_DATA_BYTES) continue;
    await store.putBlob(`${tenant}/${id}/inputs/${i}`, input);
    objects.set(i, `${tenant}/${id}/inputs/${i}`);
  }
  return objects;
}
