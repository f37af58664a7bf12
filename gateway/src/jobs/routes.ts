/**
 * The jobs HTTP API (docs/jobs.md). Any gateway replica serves every route:
 * creating a job writes its record to KV (the coordinator, wherever it runs,
 * picks it up from its watch), reads come from KV and the results stream,
 * events from the job events stream (job-event-feed.ts), and a cancel is a
 * request to the coordinator.
 */
import { createHash } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import {
  call, FlurryError, formatTraceparent, isNoResponders, jobKey, JobSubjects, newId, TERMINAL_JOB_STATES,
  type JobControlReply, type JobControlRequest, type JobRecord as StoredJobRecord,
} from '@flurry/core';
import { apiRouter, errorResponses, jsonBody, jsonResponse, pathName } from '../api/api-app.js';
import { JobRecord } from '../api/records.js';
import type { FunctionRegistry } from '../function-registry.js';
import type { JobStore } from './job-store.js';
import type { UploadedData } from '../uploads/uploaded-data.js';
import { initDataRef, intFrom, JobBody, specOf } from './job-body.js';
import { JobEventLog, openJobEventFeed, parseLastEventId } from './job-event-feed.js';
import { newCloneDetails } from './clone-attempts.js';
import { outputCount } from './job-forks.js';
import type { CallbackConfig } from '../callbacks/callback-config.js';
import { checkCallbackUrl } from '../callbacks/callback-routes.js';
import type { RunningJobs } from '../quotas/running-jobs.js';

export interface JobRoutesDeps {
  store: JobStore;
  registry: FunctionRegistry;
  maxBodyBytes: number;
  /** Uploaded data that `initData` names; without it `initData` is refused. */
  data?: UploadedData;
  callbacks: CallbackConfig;
  /** The running jobs and clones quota; without it jobs are not limited. */
  runningJobs?: RunningJobs;
}

const tags = ['Jobs'];
const jobParams = z.strictObject({ id: pathName('The job\'s id') });
const OneJob = z.strictObject({ job: JobRecord });
const bytesContent = { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } };

export function jobRoutes(deps: JobRoutesDeps) {
  const { store } = deps;
  const nc = store.fabric.nc;
  const events = new JobEventLog(nc, store.jsm);
  const app = apiRouter();

  app.openapi(createRoute({
    method: 'post', path: '/v1/jobs', tags, summary: 'Start a job',
    description: 'With an Idempotency-Key, the same key and body again answer the first job (200) instead of starting another; the same key with another body is refused (409).',
    middleware: [jsonBody(deps.maxBodyBytes)] as const,
    request: {
      headers: z.object({ 'idempotency-key': z.string().min(1, { error: 'must be 1-255 characters' }).max(255, { error: 'must be 1-255 characters' }).optional() }),
      body: { required: true, content: { 'application/json': { schema: JobBody } } },
    },
    responses: {
      202: jsonResponse(OneJob, 'Started'),
      200: jsonResponse(OneJob, 'The job an earlier request with the same Idempotency-Key started'),
      ...errorResponses,
    },
  }), async (c) => {
    const tenant = c.get('tenant');
    const body = c.req.valid('json');
    const fn = await deps.registry.get(tenant, body.function);
    const initData = body.initData === undefined ? undefined : await initDataRef(deps.data, tenant, body.initData);
    const spec = specOf(body, fn, initData);
    if (body.callbackUrl !== undefined) await checkCallbackUrl(deps.callbacks, body.callbackUrl);
    const idemKey = c.req.valid('header')['idempotency-key'];
    let jobId = newId('job');
    let replay = false;
    if (idemKey !== undefined) {
      const bodyHash = createHash('sha256').update(new Uint8Array(await c.req.arrayBuffer())).digest('hex');
      const keyHash = createHash('sha256').update(idemKey).digest('hex');
      const existing = await store.claimKey(tenant, keyHash, { jobId, bodyHash });
      if (existing) {
        if (existing.bodyHash !== bodyHash) throw new FlurryError('conflict', 'this Idempotency-Key was used with a different request body');
        const got = await store.get(tenant, existing.jobId);
        if (got) return c.json({ job: got.stored.record }, 200);
        // The key names a job that is not there: the first request is still writing it, or died between the
        // key and the job. Either way the job is made below with the key's id; of two requests making it,
        // one stores it (compare-and-set) and both answer that one.
        jobId = existing.jobId;
        replay = true;
      }
    }
    const now = Date.now();
    const record: StoredJobRecord = {
      id: jobId, tenant, function: fn.name, digest: fn.digest, clones: body.clones, state: 'queued', createdAt: now, updatedAt: now,
      boot: spec.boot, ...(initData ? { initData: initData.name } : {}),
      counts: { done: 0, failed: 0, running: 0, pending: body.clones }, clonesDetail: newCloneDetails(body.clones), pagesFetched: 0,
      ...(spec.tasks ? { tasks: { total: spec.tasks, done: 0, running: 0, backups: 0, duplicates: 0, failures: 0 } } : {}),
      ...(body.callbackUrl !== undefined ? { callback: { state: 'pending', attempts: 0 } } : {}),
    };
    await deps.runningJobs?.admit(tenant, body.clones);
    const made = await store.create({ record, traceparent: formatTraceparent(c.get('trace')), ...(body.callbackUrl !== undefined ? { callbackUrl: body.callbackUrl } : {}) }, spec);
    if (made.created) deps.runningJobs?.created(jobKey(tenant, made.stored.record.id), made.stored.record);
    return made.created && !replay ? c.json({ job: made.stored.record }, 202) : c.json({ job: made.stored.record }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/jobs', tags, summary: 'The caller\'s jobs, newest first, a page at a time',
    request: {
      query: z.strictObject({
        limit: z.coerce.number<string>().pipe(intFrom(1, 1000)).optional().openapi({ type: 'integer', minimum: 1, maximum: 1000, description: 'Jobs per page (default 50)' }),
        cursor: z.string().optional().openapi({ description: 'The `next` of the page before' }),
      }),
    },
    responses: {
      200: jsonResponse(z.strictObject({ jobs: z.array(JobRecord), next: z.string().optional().openapi({ description: 'The cursor of the next page, when there is one' }) }), 'A page of jobs'),
      ...errorResponses,
    },
  }), async (c) => {
    const { limit = 50, cursor } = c.req.valid('query');
    let ids = await store.ids(c.get('tenant'));
    if (cursor) ids = ids.filter((id) => id < cursor);
    const page = ids.slice(0, limit);
    const jobs: StoredJobRecord[] = [];
    for (const id of page) {
      const got = await store.get(c.get('tenant'), id);
      if (got) jobs.push(got.stored.record);
    }
    return c.json(ids.length > limit ? { jobs, next: page[page.length - 1] } : { jobs }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/jobs/{id}', tags, summary: 'One job',
    request: { params: jobParams },
    responses: { 200: jsonResponse(OneJob, 'The job'), ...errorResponses },
  }), async (c) => c.json({ job: await store.record(c.get('tenant'), c.req.valid('param').id) }, 200));

  app.openapi(createRoute({
    method: 'get', path: '/v1/jobs/{id}/result', tags, summary: 'A done job\'s result',
    description: 'The reduced output as bytes when the job ran reduce, else every clone\'s output, base64, in clone order. 409 while the job is not done.',
    request: { params: jobParams },
    responses: {
      200: {
        description: 'The result',
        content: {
          ...bytesContent,
          'application/json': { schema: z.strictObject({ outputs: z.array(z.string().openapi({ format: 'byte' })) }) },
        },
      },
      ...errorResponses,
    },
  }), async (c) => {
    const job = await store.record(c.get('tenant'), c.req.valid('param').id);
    if (job.state === 'failed') throw new FlurryError('conflict', `job ${job.id} failed: ${job.error?.code ?? 'internal'}: ${job.error?.message ?? ''}`);
    if (job.state !== 'done') throw new FlurryError('conflict', `job ${job.id} is ${job.state}, not done`);
    const reduced = await store.getBlob(`${job.tenant}/${job.id}/reduced`);
    if (reduced) return new Response(reduced as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
    const outputs = job.tasks ? await store.taskOutputs(job.tenant, job.id, job.tasks.total, 'empty') : await store.outputsInOrder(job.tenant, job.id, outputCount(job), 'empty');
    return c.json({ outputs: outputs.map((o) => Buffer.from(o).toString('base64')) }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/jobs/{id}/clones/{i}/output', tags, summary: 'One clone\'s output',
    request: { params: z.strictObject({ id: pathName('The job\'s id'), i: pathName('The clone\'s index, from 0') }) },
    responses: { 200: { description: 'The output\'s bytes', content: bytesContent }, ...errorResponses },
  }), async (c) => {
    const params = c.req.valid('param');
    const job = await store.record(c.get('tenant'), params.id);
    const i = Number(params.i);
    // Not an index of this job's clones: a clone that does not exist (404), whatever the form of its name.
    if (!Number.isInteger(i) || i < 0 || i >= job.clones) throw new FlurryError('not_found', `job ${job.id} has no clone ${params.i}`);
    if (job.tasks) throw new FlurryError('not_found', `job ${job.id} has tasks: its outputs are per task, in its result (GET /v1/jobs/${job.id}/result)`);
    const r = await store.result(job.tenant, job.id, i);
    if (!r) throw new FlurryError('not_found', `clone ${i} of job ${job.id} has no output yet`);
    return new Response((r.output ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
  });

  app.openapi(createRoute({
    method: 'delete', path: '/v1/jobs/{id}', tags, summary: 'Cancel a job',
    description: 'A job that has ended already is answered as it is.',
    request: { params: jobParams },
    responses: { 200: jsonResponse(OneJob, 'The job, cancelled (or as it ended)'), ...errorResponses },
  }), async (c) => {
    const job = await store.record(c.get('tenant'), c.req.valid('param').id);
    if (TERMINAL_JOB_STATES.includes(job.state)) return c.json({ job }, 200);
    const req: JobControlRequest = { action: 'cancel', tenant: job.tenant, jobId: job.id };
    let reply: JobControlReply;
    try {
      reply = await call(nc, 'jobControl', JobSubjects.control, req);
    } catch (err) {
      if (isNoResponders(err)) throw new FlurryError('unavailable', 'no job coordinator is running; retry', { retryAfterSeconds: 1 });
      throw new FlurryError('unavailable', `the job coordinator did not answer: ${(err as Error).message}`, { retryAfterSeconds: 1 });
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return c.json({ job: reply.job }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: '/v1/jobs/{id}/events', tags, summary: 'A job\'s events, live (server-sent events)',
    description: 'Each event is named by its kind (state, placed, snapshot, forked, progress, clone.done, clone.failed, clone.lost, reduced, done, failed, cancelled); '
      + 'its data is the event as JSON, its id its place in the job\'s stream. Reconnect with Last-Event-ID to go on after the last event received (docs/jobs.md, "Events").',
    request: {
      params: jobParams,
      headers: z.object({ 'last-event-id': z.string().optional().openapi({ description: 'The id of the last event received' }) }),
    },
    responses: { 200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errorResponses },
  }), async (c) => {
    const connection = new AbortController();
    const { id } = c.req.valid('param');
    const feed = await openJobEventFeed(store, events, c.get('tenant'), id, parseLastEventId(c.req.valid('header')['last-event-id']), connection.signal);
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => connection.abort());
      try {
        for await (const item of feed) {
          if ('keepAlive' in item) await stream.write(': keep-alive\n\n');
          else await stream.writeSSE({ id: item.id?.toString(), event: item.event.kind, data: JSON.stringify(item.event) });
        }
      } catch (err) {
        // The reader reconnects with Last-Event-ID and goes on from the last event it got.
        c.get('log').warn({ requestId: c.get('requestId'), jobId: id, err: (err as Error).message }, 'job event stream broken off');
      } finally {
        connection.abort();
      }
    });
  });
  return app;
}
