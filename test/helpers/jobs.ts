/** Submitting a job through a fleet's gateway, waiting for it and reading its clones' outputs: the one submit-and-wait of the suites. */
import { expect } from 'vitest';
import { TERMINAL_JOB_STATES, type JobRecord } from '@flurry/core';
import { json, until, type Api } from './gateway-api.js';

/** A job's `init`, `input` or `inputs[i]` as the API takes it (base64): a string or bytes as they are, anything else as JSON. */
export function b64(value: unknown): string {
  if (typeof value === 'string' || value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return Buffer.from(JSON.stringify(value)).toString('base64');
}

/** POST /v1/jobs, answered 202 (the body is in the failure message): the job as created. */
export async function submitJob(api: Api, body: unknown): Promise<JobRecord> {
  return (await json<{ job: JobRecord }>(await api('POST', '/v1/jobs', body), 202)).job;
}

export interface JobWait {
  /** How long the job may take; the failure shows its last record. Default 60 s. */
  timeoutMs?: number;
  /**
   * Reads through a gateway that is away for a moment (restarted, or its nats node gone): a read that cannot connect,
   * or a 503 refusal with Retry-After, is read again until the deadline. Otherwise any answer but 200 fails at once.
   */
  throughOutages?: boolean;
  /** More for the timeout's message: what the fleet said meanwhile (its log lines about the job). */
  explain?: () => string;
}

/** Polls the job until `reached` holds for its record (`what` names it for the timeout message). */
export async function jobUntil(api: Api, id: string, what: string, reached: (job: JobRecord) => boolean, wait: JobWait = {}): Promise<JobRecord> {
  let last: JobRecord | undefined;
  return until(`job ${id} ${what}`, async () => {
    const job = await read(api, id, wait.throughOutages === true);
    if (job) last = job;
    return job && reached(job) ? job : undefined;
  }, wait.timeoutMs ?? 60_000, async () => `${last ? `it stayed ${last.state} (${JSON.stringify(last.counts)})` : 'it was never read'}${wait.explain ? `\n${wait.explain()}` : ''}`);
}

/** Polls the job until it ends (done, failed or cancelled). */
export function finishedJob(api: Api, id: string, wait?: JobWait): Promise<JobRecord> {
  return jobUntil(api, id, 'to end', (job) => TERMINAL_JOB_STATES.includes(job.state), wait);
}

/** Submits the job and waits for its end. */
export async function runJob(api: Api, body: unknown, wait?: JobWait): Promise<JobRecord> {
  return finishedJob(api, (await submitJob(api, body)).id, wait);
}

/** Each clone's output of `job` (GET /v1/jobs/:id/clones/:i/output, each answered 200), parsed as JSON. */
export async function cloneOutputs<T>(api: Api, job: Pick<JobRecord, 'id' | 'clones'>): Promise<T[]> {
  const outputs: T[] = [];
  for (let i = 0; i < job.clones; i++) {
    const res = await api('GET', `/v1/jobs/${job.id}/clones/${i}/output`);
    expect(res.status).toBe(200);
    outputs.push(JSON.parse(Buffer.from(await res.arrayBuffer()).toString()) as T);
  }
  return outputs;
}

async function read(api: Api, id: string, throughOutages: boolean): Promise<JobRecord | undefined> {
  const res = await api('GET', `/v1/jobs/${id}`).catch((err: unknown) => {
    if (throughOutages) return undefined;
    throw err;
  });
  if (!res || (throughOutages && res.status === 503 && res.headers.has('retry-after'))) return void (await res?.body?.cancel());
  return (await json<{ job: JobRecord }>(res)).job;
}
