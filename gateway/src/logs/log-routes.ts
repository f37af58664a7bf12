/**
 * The log routes (docs/api.md, "Guest logs"): `GET /v1/functions/:name/logs`,
 * `GET /v1/jobs/:id/logs` and `GET /v1/services/:name/logs`. Each is the
 * caller's tenant's only: the function, job or service is looked up under that tenant (another's is a 404, as
 * everywhere, auth/roles.ts) and the stream subject read starts with it.
 * Without `follow` the answer is `{ lines: [...] }`; with it, an SSE stream:
 * one `line` event per line, its `id:` the stream sequence of its run, so a
 * reader that reconnects with `Last-Event-ID` gets what followed.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { FlurryError, GuestLogSubjects } from '@flurry/core';
import { apiRouter, errorResponses, pathName, type Env } from '../api/api-app.js';
import type { FunctionRegistry } from '../function-registry.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Services } from '../services/services.js';
import { parseLastEventId } from '../jobs/job-event-feed.js';
import type { GuestLogStore, LogStart } from './guest-log-store.js';
import { GuestLogLine } from './log-line.js';
import { JobLogQuery, LogQuery, MAX_LOG_LIMIT, readLogQuery, type LogRead } from './log-query.js';

export interface LogRoutesDeps {
  logs: GuestLogStore;
  registry: FunctionRegistry;
  /** Without it (a gateway without jobs) the job route is absent. */
  jobs?: JobStore;
  /** Without it (a gateway without services) the service route is absent. */
  services?: Pick<Services, 'records'>;
}

/** A follower gets a comment after this much silence, so proxies keep the connection. */
const KEEP_ALIVE_MS = 15_000;

const lines = {
  description: 'The last lines kept, oldest first; with `follow=true`, Server-Sent Events: one `line` event per line (`data:` a GuestLogLine, `id:` its run\'s stream sequence), the last lines first, then each new one',
  content: {
    'application/json': { schema: z.strictObject({ lines: z.array(GuestLogLine) }) },
    'text/event-stream': { schema: z.string().openapi({ description: '`event: line`, `id: <sequence>`, `data: <GuestLogLine as JSON>`; comments as keep-alives' }) },
  },
} as const;

export function logRoutes(deps: LogRoutesDeps) {
  const router = apiRouter();
  router.openapi(createRoute({
    method: 'get', path: '/v1/functions/{name}/logs', tags: ['Functions'], summary: 'What the function\'s calls logged',
    request: { params: z.strictObject({ name: pathName('The function\'s name') }), query: LogQuery },
    responses: { 200: lines, ...errorResponses },
  }), async (c) => {
    const read = readLogQuery(c.req.valid('query'), Date.now());
    const fn = await deps.registry.get(c.get('tenant'), c.req.valid('param').name);
    return answer(c, deps.logs, GuestLogSubjects.function(fn.tenant, fn.name), read);
  });

  const { jobs } = deps;
  if (jobs) {
    router.openapi(createRoute({
      method: 'get', path: '/v1/jobs/{id}/logs', tags: ['Jobs'], summary: 'What the job\'s clones and reduce logged',
      request: { params: z.strictObject({ id: pathName('The job\'s id') }), query: JobLogQuery },
      responses: { 200: lines, ...errorResponses },
    }), async (c) => {
      const read = readLogQuery(c.req.valid('query'), Date.now());
      const job = await jobs.record(c.get('tenant'), c.req.valid('param').id);
      const { clone } = read;
      if (typeof clone === 'number' && clone >= job.clones) throw new FlurryError('bad_request', `clone must be below the job's ${job.clones} clones, not ${clone}`);
      const subject = clone === undefined ? GuestLogSubjects.job(job.tenant, job.id)
        : clone === 'reduce' ? GuestLogSubjects.reduce(job.tenant, job.id)
          : GuestLogSubjects.clone(job.tenant, job.id, clone);
      return answer(c, deps.logs, subject, read);
    });
  }
  const { services } = deps;
  if (services) {
    router.openapi(createRoute({
      method: 'get', path: '/v1/services/{name}/logs', tags: ['Services'], summary: 'What the service\'s instances logged, every instance\'s',
      request: { params: z.strictObject({ name: pathName('The service\'s name') }), query: LogQuery },
      responses: { 200: lines, ...errorResponses },
    }), async (c) => {
      const read = readLogQuery(c.req.valid('query'), Date.now());
      const service = await services.records.get(c.get('tenant'), c.req.valid('param').name);
      return answer(c, deps.logs, GuestLogSubjects.service(service.tenant, service.name), read);
    });
  }
  return router;
}

async function answer(c: Context<Env>, logs: GuestLogStore, subject: string, read: LogRead): Promise<Response> {
  const tenant = c.get('tenant');
  const afterSeq = read.follow ? parseLastEventId(c.req.header('last-event-id')) : undefined;
  const start: LogStart = afterSeq !== undefined ? { afterSeq } : { sinceMs: read.sinceMs };
  // A follower back after a dropped connection gets everything it missed, not just the last `limit` lines.
  const limit = afterSeq !== undefined ? MAX_LOG_LIMIT : read.limit;
  if (!read.follow) {
    const kept = await logs.read(tenant, subject, limit, start);
    return c.json({ lines: kept.map((k) => k.record) }, 200);
  }
  const connection = new AbortController();
  // Opened before the answer starts: a broker failure is still an error response, not a broken stream.
  const batches = logs.follow(tenant, subject, limit, start, connection.signal);
  const first = await batches.next();
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => connection.abort());
    const keepAlive = setInterval(() => void stream.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    try {
      for (let step = first; !step.done; step = await batches.next()) {
        for (const { seq, record } of step.value) await stream.writeSSE({ id: String(seq), event: 'line', data: JSON.stringify(record) });
      }
    } catch (err) {
      // The reader reconnects with Last-Event-ID and goes on after the last line it got.
      c.get('log').warn({ requestId: c.get('requestId'), subject, err: (err as Error).message }, 'log stream broken off');
    } finally {
      clearInterval(keepAlive);
      connection.abort();
      await batches.return(undefined);
    }
  });
}
