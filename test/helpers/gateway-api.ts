/** HTTP helpers for the integration suites that talk to a fleet's gateway. */
import { expect } from 'vitest';
import type { JobRecord } from '@flurry/core';

export type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Response>;

/** Requests to the gateway at `url()` (a getter: suites start their fleet in beforeAll); a body is sent as JSON. */
export function gatewayApi(url: () => string): Api {
  return (method, path, body, headers = {}) =>
    fetch(`${url()}${path}`, { method, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
}

/**
 * `api` for reads right after a broker node is lost: a GET answered 503 with Retry-After (an API route's store read
 * while a stream elects a new leader: the documented clean refusal) is asked again after the time it names, for up
 * to `withinMs`; then the last answer is returned.
 */
export function patientApi(api: Api, withinMs = 30_000): Api {
  return async (method, path, body, headers) => {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const res = await api(method, path, body, headers);
      const retryAfter = res.headers.get('retry-after');
      if (res.status !== 503 || retryAfter === null || method !== 'GET' || Date.now() > deadline) return res;
      await new Promise((r) => setTimeout(r, Number(retryAfter) * 1000));
    }
  };
}

/** The answer's body as JSON, once its status is `status` (the body is in the failure message). */
export async function json<T = any>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/**
 * Polls `probe` every 100 ms until it gives something other than undefined;
 * on timeout the error says what was awaited and, with `context`, how things stood.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000, context?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) {
      const seen = context ? await context().catch((err: unknown) => `(context unavailable: ${(err as Error).message})`) : undefined;
      throw new Error(`timed out waiting for ${what}${seen ? `; ${seen}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A job's record (GET /v1/jobs/:id, answered 200). */
export async function jobRecord(api: Api, id: string): Promise<JobRecord> {
  return (await json<{ job: JobRecord }>(await api('GET', `/v1/jobs/${id}`))).job;
}
