/**
 * The jobs HTTP API (docs/jobs.md). Any gateway replica serves every route:
 * creating a job writes its record to KV (the coordinator, wherever it runs,
 * picks it up from its watch), reads come from KV and the results stream,
 * events from the job events stream (job-event-feed.ts), and a cancel is a
 * request to the coordinator.
 */
import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import {
  call, FlurryError, formatTraceparent, isNoResponders, jobKey, JobSubjects, newId, TERMINAL_JOB_STATES,
  type JobControlReply, type JobControlRequest, type JobRecord, type Logger,
} from '@flurry/core';
import { readBody } from '../request-body.js';
import type { FunctionRegistry } from '../function-registry.js';
import type { JobStore } from './job-store.js';
import type { UploadedData } from '../uploads/uploaded-data.js';
import { initDataRef, parseJobBody, specOf } from './job-body.js';
import { JobEventLog, openJobEventFeed, parseLastEventId } from './job-event-feed.js';
import { newCloneDetails } from './clone-attempts.js';
import type { CallbackConfig } from '../callbacks/callback-config.js';
import { checkCallbackUrl } from '../callbacks/callback-routes.js';
import type { RunningJobs } from '../quotas/running-jobs.js';
import type { TraceVariables } from '../metrics/trace-context.js';

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

type Env = { Variables: { requestId: string; tenant: string; log: Logger } & TraceVariables };

export function addJobRoutes<E extends Env>(app: Hono<E>, deps: JobRoutesDeps): void {
  const { store } = deps;
  const nc = store.fabric.nc;
  const events = new JobEventLog(nc, store.jsm);

  app.post('/v1/jobs', async (c) => {
    const raw = await readBody(c, deps.maxBodyBytes);
    const tenant = c.var.tenant;
    const body = parseJobBody(raw);
    const fn = await deps.registry.get(tenant, body.function);
    const initData = body.initData === undefined ? undefined : await initDataRef(deps.data, tenant, body.initData);
    const spec = specOf(body, fn, initData);
    if (body.callbackUrl !== undefined) await checkCallbackUrl(deps.callbacks, body.callbackUrl);
    const idemKey = c.req.header('idempotency-key');
    let jobId = newId('job');
    let replay = false;
    if (idemKey !== undefined) {
      if (idemKey.length === 0 || idemKey.length > 255) throw new FlurryError('bad_request', 'Idempotency-Key must be 1-255 characters');
      const bodyHash = createHash('sha256').update(raw).digest('hex');
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
    const record: JobRecord = {
      id: jobId, tenant, function: fn.name, digest: fn.digest, clones: body.clones, state: 'queued', createdAt: now, updatedAt: now,
      boot: spec.boot, ...(initData ? { initData: initData.name } : {}),
      counts: { done: 0, failed: 0, running: 0, pending: body.clones }, clonesDetail: newCloneDetails(body.clones), pagesFetched: 0,
      ...(body.callbackUrl !== undefined ? { callback: { state: 'pending', attempts: 0 } } : {}),
    };
    await deps.runningJobs?.admit(tenant, body.clones);
    const made = await store.create({ record, traceparent: formatTraceparent(c.var.trace), ...(body.callbackUrl !== undefined ? { callbackUrl: body.callbackUrl } : {}) }, spec);
    if (made.created) deps.runningJobs?.created(jobKey(tenant, made.stored.record.id), made.stored.record);
    return c.json({ job: made.stored.record }, made.created && !replay ? 202 : 200);
  });

  app.get('/v1/jobs', async (c) => {
    const limitParam = c.req.query('limit');
    const limit = limitParam === undefined ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new FlurryError('bad_request', 'limit must be an integer from 1 to 1000');
    const cursor = c.req.query('cursor');
    let ids = await store.ids(c.var.tenant);
    if (cursor) ids = ids.filter((id) => id < cursor);
    const page = ids.slice(0, limit);
    const jobs: JobRecord[] = [];
    for (const id of page) {
      const got = await store.get(c.var.tenant, id);
      if (got) jobs.push(got.stored.record);
    }
    return c.json(ids.length > limit ? { jobs, next: page[page.length - 1] } : { jobs });
  });

  app.get('/v1/jobs/:id', async (c) => c.json({ job: await store.record(c.var.tenant, c.req.param('id')) }));

  app.get('/v1/jobs/:id/result', async (c) => {
    const job = await store.record(c.var.tenant, c.req.param('id'));
    if (job.state === 'failed') throw new FlurryError('conflict', `job ${job.id} failed: ${job.error?.code ?? 'internal'}: ${job.error?.message ?? ''}`);
    if (job.state !== 'done') throw new FlurryError('conflict', `job ${job.id} is ${job.state}, not done`);
    const reduced = await store.getBlob(`${job.tenant}/${job.id}/reduced`);
    if (reduced) return new Response(reduced as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
    const outputs: string[] = [];
    for (let i = 0; i < job.clones; i++) {
      const r = await store.result(job.tenant, job.id, i);
      outputs.push(Buffer.from(r?.output ?? new Uint8Array(0)).toString('base64'));
    }
    return c.json({ outputs });
  });

  app.get('/v1/jobs/:id/clones/:i/output', async (c) => {
    const job = await store.record(c.var.tenant, c.req.param('id'));
    const i = Number(c.req.param('i'));
    if (!Number.isInteger(i) || i < 0 || i >= job.clones) throw new FlurryError('not_found', `job ${job.id} has no clone ${c.req.param('i')}`);
    const r = await store.result(job.tenant, job.id, i);
    if (!r) throw new FlurryError('not_found', `clone ${i} of job ${job.id} has no output yet`);
    return new Response((r.output ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } });
  });

  app.delete('/v1/jobs/:id', async (c) => {
    const job = await store.record(c.var.tenant, c.req.param('id'));
    if (TERMINAL_JOB_STATES.includes(job.state)) return c.json({ job });
    const req: JobControlRequest = { action: 'cancel', tenant: job.tenant, jobId: job.id };
    let reply: JobControlReply;
    try {
      reply = await call(nc, 'jobControl', JobSubjects.control, req);
    } catch (err) {
      if (isNoResponders(err)) throw new FlurryError('unavailable', 'no job coordinator is running; retry', { retryAfterSeconds: 1 });
      throw new FlurryError('unavailable', `the job coordinator did not answer: ${(err as Error).message}`, { retryAfterSeconds: 1 });
    }
    if (!reply.ok) throw FlurryError.fromWire(reply.error);
    return c.json({ job: reply.job });
  });

  app.get('/v1/jobs/:id/events', async (c) => {
    const connection = new AbortController();
    const feed = await openJobEventFeed(store, events, c.var.tenant, c.req.param('id'), parseLastEventId(c.req.header('last-event-id')), connection.signal);
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => connection.abort());
      try {
        for await (const item of feed) {
          if ('keepAlive' in item) await stream.write(': keep-alive\n\n');
          else await stream.writeSSE({ id: item.id?.toString(), event: item.event.kind, data: JSON.stringify(item.event) });
        }
      } catch (err) {
        // The reader reconnects with Last-Event-ID and goes on from the last event it got.
        c.var.log.warn({ requestId: c.var.requestId, jobId: c.req.param('id'), err: (err as Error).message }, 'job event stream broken off');
      } finally {
        connection.abort();
      }
    });
  });
}
