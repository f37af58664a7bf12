/**
 * The gateway's checks of request bodies and the Idempotency-Key, through the
 * real app (createApp) and `app.request`, without a fleet. The stores behind
 * the routes are in-memory fakes that record what they were asked to do, so
 * each refusal is checked for its status, its error code, and that nothing
 * was created or changed. The checks inside ServiceRecords that need its KV
 * (the function exists, max at least min against the stored record, the
 * instance quota) are left to test/services.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { FAKE_MAX_BODY_BYTES as MAX_BODY_BYTES, fakeGateway } from '../../test/helpers/fake-gateway.js';

/** The gateway without uploaded data: `initData` is refused as on a gateway that keeps none. */
const gateway = () => fakeGateway({ data: false });

/** The answer is the API's error shape with this status and code; the message matches `message`. */
async function expectRefusal(res: Response, status: number, code: string, message?: RegExp): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('x-flurry-error')).toBe(code);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
}

const JOB = { function: 'mapper', clones: 2 };

describe('POST /v1/jobs body checks', () => {
  it('a valid body creates one job (the refusals below are refused by their check, not by the fakes)', async () => {
    const { send, calls } = gateway();
    const res = await send('POST', '/v1/jobs', { ...JOB, input: 'aGk=', boot: 'cold', retries: 0, timeoutMs: 1000 });
    expect(res.status, await res.clone().text()).toBe(202);
    expect(calls.create).toHaveLength(1);
    expect(calls.create[0]).toMatchObject({ function: 'mapper', clones: 2, state: 'queued', boot: 'cold', counts: { pending: 2 } });
  });

  const refused: [what: string, body: unknown, message: RegExp][] = [
    ['not JSON', '{"function":', /Malformed JSON/],
    ['a JSON array', '[1]', /JSON object/],
    ['an unknown field', { ...JOB, colons: 3 }, /unknown field "colons"/],
    ['no function', { clones: 2 }, /"function"/],
    ['an empty function name', { ...JOB, function: '' }, /"function"/],
    ['0 clones', { ...JOB, clones: 0 }, /"clones" must be an integer from 1 to 1024/],
    ['1025 clones', { ...JOB, clones: 1025 }, /"clones"/],
    ['a fraction of clones', { ...JOB, clones: 1.5 }, /"clones"/],
    ['clones as a string', { ...JOB, clones: '2' }, /"clones"/],
    ['a non-string init', { ...JOB, init: 5 }, /"init" must be a base64 string/],
    ['init not base64', { ...JOB, init: 'not base64!' }, /"init" is not valid base64/],
    ['input not base64', { ...JOB, input: 'a' }, /"input" is not valid base64/],
    ['a non-string initData', { ...JOB, initData: 1 }, /"initData" must be the name/],
    ['init and initData', { ...JOB, init: '', initData: 'x' }, /"init" or "initData", not both/],
    ['initData on a gateway without data', { ...JOB, initData: 'x' }, /keeps no job data/],
    ['an unknown boot', { ...JOB, boot: 'warm' }, /"boot" must be "fork" or "cold"/],
    ['keepParent not a boolean', { ...JOB, keepParent: 'yes' }, /"keepParent" must be a boolean/],
    ['inputs not strings', { ...JOB, inputs: [1, 2] }, /"inputs\[0\]" must be a base64 string/],
    ['inputs of the wrong length', { ...JOB, inputs: ['', '', ''] }, /"inputs" has 3 entries; it must have one per clone \(2\)/],
    ['input and inputs', { ...JOB, input: '', inputs: ['', ''] }, /"input" or "inputs", not both/],
    ['an inputs entry not base64', { ...JOB, inputs: ['', '%%'] }, /"inputs\[1\]" is not valid base64/],
    ['timeoutMs 0', { ...JOB, timeoutMs: 0 }, /"timeoutMs" must be an integer from 1/],
    ['timeoutMs over a day', { ...JOB, timeoutMs: 86_400_001 }, /"timeoutMs"/],
    ['retries 11', { ...JOB, retries: 11 }, /"retries" must be an integer from 0 to 10/],
    ['reduce not a boolean', { ...JOB, reduce: 1 }, /"reduce" must be a boolean/],
    ['reduce on a function without one', { ...JOB, reduce: true }, /exports no reduce/],
    ['a function without run', { ...JOB, function: 'handler' }, /exports no run/],
    ['a callbackUrl that is not a URL', { ...JOB, callbackUrl: 'nowhere' }, /callbackUrl/i],
    ['a callbackUrl on a gateway without a callback secret', { ...JOB, callbackUrl: 'https://example.com/done' }, /callbacks are off/],
  ];
  it.each(refused)('%s - 400 bad_request, no job created', async (_what, body, message) => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/jobs', body), 400, 'bad_request', message);
    expect(calls.create).toEqual([]);
    expect(calls.claimKey).toEqual([]);
  });

  it.each([['text/plain'], ['application/x-www-form-urlencoded']])('a body labelled %s is read as JSON all the same (curl -d, fetch of a string)', async (type) => {
    const { send, calls } = gateway();
    expect((await send('POST', '/v1/jobs', JOB, { 'content-type': type })).status).toBe(202);
    await expectRefusal(await send('POST', '/v1/jobs', { ...JOB, colour: 1 }, { 'content-type': type }), 400, 'bad_request', /unknown field "colour"/);
    expect(calls.create).toHaveLength(1);
  });

  it('a function that is not deployed - 404 not_found, no job created', async () => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/jobs', { ...JOB, function: 'absent' }), 404, 'not_found', /"absent" is not deployed/);
    expect(calls.create).toEqual([]);
  });

  it('a body over the limit - 413 payload_too_large, no job created', async () => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/jobs', { ...JOB, input: 'A'.repeat(MAX_BODY_BYTES) }), 413, 'payload_too_large');
    expect(calls.create).toEqual([]);
  });
});

describe('Idempotency-Key on POST /v1/jobs', () => {
  it.each([['empty', ''], ['256 characters', 'k'.repeat(256)]])('%s - 400 bad_request, no key claimed, no job created', async (_what, key) => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/jobs', JOB, { 'idempotency-key': key }), 400, 'bad_request', /header "idempotency-key" must be 1-255 characters/);
    expect(calls.claimKey).toEqual([]);
    expect(calls.create).toEqual([]);
  });

  it('the same key and body again - 200 with the first job, none created again', async () => {
    const { send, calls } = gateway();
    const first = await send('POST', '/v1/jobs', JOB, { 'idempotency-key': 'k'.repeat(255) });
    expect(first.status).toBe(202);
    const again = await send('POST', '/v1/jobs', JOB, { 'idempotency-key': 'k'.repeat(255) });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { job: JobRecord }).job.id).toBe(((await first.json()) as { job: JobRecord }).job.id);
    expect(calls.create).toHaveLength(1);
  });

  it('the same key with another body - 409 conflict, the first job alone', async () => {
    const { send, calls } = gateway();
    expect((await send('POST', '/v1/jobs', JOB, { 'idempotency-key': 'once' })).status).toBe(202);
    await expectRefusal(await send('POST', '/v1/jobs', { ...JOB, clones: 3 }, { 'idempotency-key': 'once' }), 409, 'conflict', /different request body/);
    expect(calls.create).toHaveLength(1);
    expect(calls.create[0]!.clones).toBe(2);
  });

  it('another key - another job', async () => {
    const { send, calls } = gateway();
    expect((await send('POST', '/v1/jobs', JOB, { 'idempotency-key': 'a' })).status).toBe(202);
    expect((await send('POST', '/v1/jobs', JOB, { 'idempotency-key': 'b' })).status).toBe(202);
    expect(new Set(calls.create.map((r) => r.id)).size).toBe(2);
  });
});

describe('service bodies', () => {
  it('a valid body reaches the service manager with init decoded', async () => {
    const { send, calls } = gateway();
    expect((await send('POST', '/v1/services', { name: 'svc', function: 'handler', init: 'aGk=' })).status).toBe(201);
    expect(calls.services).toEqual([['default', { name: 'svc', function: 'handler', init: new Uint8Array(Buffer.from('hi')) }]]);
  });

  const refused: [what: string, body: unknown, message: RegExp][] = [
    ['not JSON', 'nope', /Malformed JSON/],
    ['a JSON array', '[]', /must be a JSON object/],
    ['JSON null', 'null', /must be a JSON object/],
    ['an unknown field', { name: 'svc', function: 'handler', colour: 'red' }, /unknown field "colour"/],
    ['no function', { name: 'svc' }, /"function" must be a function name/],
    ['a name with capitals', { name: 'Svc', function: 'handler' }, /"name" must be 1-63 lower-case letters/],
    ['max 65', { name: 'svc', function: 'handler', max: 65 }, /"max" must be an integer from 1 to 64/],
    ['min as a string', { name: 'svc', function: 'handler', min: '1' }, /"min" must be an integer from 0 to 64/],
    ['init and initData', { name: 'svc', function: 'handler', init: '', initData: 'x' }, /"init" or "initData", not both/],
    ['a non-string init', { name: 'svc', function: 'handler', init: [] }, /"init" must be a base64 string/],
    ['init not base64', { name: 'svc', function: 'handler', init: '@@' }, /"init" is not valid base64/],
    ['a non-string initData', { name: 'svc', function: 'handler', initData: 3 }, /"initData" must be the name/],
    ['initData on a gateway without data', { name: 'svc', function: 'handler', initData: 'x' }, /keeps no uploaded data/],
  ];
  it.each(refused)('POST /v1/services, %s - 400 bad_request, no service created', async (_what, body, message) => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/services', body), 400, 'bad_request', message);
    expect(calls.services).toEqual([]);
  });

  it('PATCH with min, max and targetConcurrency reaches the service manager', async () => {
    const { send, calls } = gateway();
    expect((await send('PATCH', '/v1/services/svc', { min: 1, max: 3, targetConcurrency: 4 })).status).toBe(200);
    expect(calls.updates).toEqual([['default', 'svc', { min: 1, max: 3, targetConcurrency: 4 }]]);
  });

  const patches: [what: string, body: unknown, message: RegExp][] = [
    ['init', { init: '' }, /cannot change "init" of a service/],
    ['initData', { initData: 'x' }, /cannot change "initData" of a service/],
    ['function', { function: 'other' }, /cannot change "function" of a service/],
    ['an unknown field', { min: 1, colour: 'red' }, /cannot change "colour" \(only min, max and targetConcurrency\)/],
    ['min above max', { min: 65 }, /"min" must be an integer from 0 to 64/],
    ['not JSON', '{', /Malformed JSON/],
  ];
  it.each(patches)('PATCH /v1/services/:name changing %s - 400 bad_request, nothing changed', async (_what, body, message) => {
    const { send, calls } = gateway();
    await expectRefusal(await send('PATCH', '/v1/services/svc', body), 400, 'bad_request', message);
    expect(calls.updates).toEqual([]);
  });
});

describe('migrate bodies', () => {
  it('an empty body and a full one reach the service manager (an admin moves any tenant\'s instance)', async () => {
    const { send, calls } = gateway();
    expect((await send('POST', '/v1/instances/i1/migrate')).status).toBe(200);
    expect((await send('POST', '/v1/instances/i2/migrate', { target: 'h2', downtimeBudgetMs: 60_000, maxRounds: 0, verify: true })).status).toBe(200);
    expect(calls.migrations).toEqual([
      [undefined, 'i1', undefined, {}],
      [undefined, 'i2', 'h2', { downtimeBudgetMs: 60_000, maxRounds: 0, verify: true }],
    ]);
  });

  const refused: [what: string, body: unknown, message: RegExp][] = [
    ['not JSON', '{target', /Malformed JSON/],
    ['a JSON array', '["h2"]', /must be a JSON object/],
    ['an unknown field', { target: 'h2', rounds: 3 }, /unknown field "rounds"/],
    ['downtimeBudgetMs 0', { downtimeBudgetMs: 0 }, /"downtimeBudgetMs" must be a number of milliseconds above 0 and at most 60000/],
    ['downtimeBudgetMs over a minute', { downtimeBudgetMs: 60_001 }, /"downtimeBudgetMs"/],
    ['downtimeBudgetMs as a string', { downtimeBudgetMs: '30' }, /"downtimeBudgetMs"/],
    ['maxRounds -1', { maxRounds: -1 }, /"maxRounds" must be an integer from 0/],
    ['maxRounds 101', { maxRounds: 101 }, /"maxRounds"/],
    ['a fraction of maxRounds', { maxRounds: 2.5 }, /"maxRounds"/],
    ['verify not a boolean', { verify: 'yes' }, /"verify" must be true or false/],
  ];
  it.each(refused)('%s - 400 bad_request, no migration started', async (_what, body, message) => {
    const { send, calls } = gateway();
    await expectRefusal(await send('POST', '/v1/instances/i1/migrate', body), 400, 'bad_request', message);
    expect(calls.migrations).toEqual([]);
  });
});
