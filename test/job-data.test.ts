// Job data (docs/api.md, "Job data") and boot modes (docs/jobs.md) over a
// real fleet: a nats-server, a gateway and three host processes. A BLAST
// database larger than any request body is uploaded once and used as the
// parent's init input; a cold-boot job of the same search must give the same
// answer; oversized uploads are refused without leaving anything behind.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataStoreName, type DataRecord, type JobRecord } from '@flurry/core';
import { Flurry } from '@flurry/sdk';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import { makeQueries, parseFasta, parseTabular, toFasta, type FastaRecord, type TabularHit } from '../infra/src/datasets.js';
import { deploy, guestProgram, missingCGuests } from './helpers/functions.js';
import { gatewayApi } from './helpers/gateway-api.js';
import { b64, finishedJob } from './helpers/jobs.js';

const MiB = 1024 * 1024;
/** The data limit of this fleet: well above the largest request body (6 MiB), small enough to exceed in a test. */
const MAX_DATA_BYTES = 12 * MiB;


/** A deterministic random nucleotide database of `count` sequences of `length` bases. */
function randomDatabase(count: number, length: number, seed: number): FastaRecord[] {
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x >>> 30; // the top two bits: 0..3
  };
  return Array.from({ length: count }, (_, k) => {
    const seq = new Array<string>(length);
    for (let i = 0; i < length; i++) seq[i] = 'ACGT'[next()]!;
    return { name: `chr${k + 1}`, seq: seq.join('') };
  });
}

describe.skipIf(missingCGuests('blast') !== undefined)('job data', () => {
  let fleet: LocalFleet;
  const db = randomDatabase(7, 1_100_000, 42);
  const dbFasta = toFasta(db);
  const { fasta: queryFasta, sources } = makeQueries(db, 24, 2, 5);

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_MAX_BODY: String(6 * MiB), FLURRY_MAX_DATA_BYTES: String(MAX_DATA_BYTES), LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'blast', guestProgram('blast'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  const put = (name: string, body: BodyInit, init: RequestInit = {}) => fetch(`${fleet.url}/v1/data/${name}`, { method: 'PUT', body, ...init });
  const list = async () => ((await (await fetch(`${fleet.url}/v1/data`)).json()) as { data: DataRecord[] }).data;

  async function submit(body: unknown): Promise<Response> {
    return fetch(`${fleet.url}/v1/jobs`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  }

  const finished = (id: string) => finishedJob(gatewayApi(() => fleet.url), id, { timeoutMs: 240_000 });

  /** Runs the search with the database as `initData`; every clone gets the whole query set and searches its share. */
  async function blastJob(boot: 'fork' | 'cold', clones: number): Promise<{ job: JobRecord; text: string }> {
    const res = await submit({ function: 'blast', clones, initData: 'db.fasta', boot, input: b64(queryFasta), timeoutMs: 120_000, retries: 0 });
    expect(res.status, await res.clone().text()).toBe(202);
    const job = await finished(((await res.json()) as { job: JobRecord }).job.id);
    expect(job.state, JSON.stringify(job.error ?? job.errors)).toBe('done');
    const out = await fetch(`${fleet.url}/v1/jobs/${job.id}/result`);
    expect(out.status).toBe(200);
    return { job, text: Buffer.from(await out.arrayBuffer()).toString('utf8') };
  }

  let forked: { job: JobRecord; text: string } | undefined;

  it('upload - a database larger than any request body is stored whole, listed, read back as metadata', async () => {
    const bytes = Buffer.from(dbFasta);
    expect(bytes.length).toBeGreaterThan(6 * MiB);
    const res = await put('db.fasta', bytes);
    expect(res.status, await res.clone().text()).toBe(201);
    const record = (await res.json()) as DataRecord;
    expect(record).toMatchObject({ name: 'db.fasta', bytes: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` });
    expect(record.createdAt).toBeGreaterThan(Date.now() - 600_000);
    expect(await list()).toEqual([record]);
    expect(await (await fetch(`${fleet.url}/v1/data/db.fasta`)).json()).toEqual(record);
  });

  it('initData - a forked job boots its parent from the uploaded database and finds every query where it came from', async () => {
    forked = await blastJob('fork', 6);
    const { job, text } = forked;
    expect(job).toMatchObject({ boot: 'fork', initData: 'db.fasta' });
    expect(job.snapshotId).toBeTruthy();
    const best = new Map<string, TabularHit>();
    for (const h of parseTabular(text)) if (!best.has(h.qseqid)) best.set(h.qseqid, h);
    for (const s of sources) {
      const hit = best.get(s.name);
      if (!s.subject) {
        // Random queries match nothing significant.
        expect(hit === undefined || hit.evalue > 1e-5, `${s.name}: ${JSON.stringify(hit)}`).toBe(true);
        continue;
      }
      expect(hit, s.name).toBeDefined();
      const lo = Math.min(hit!.sstart, hit!.send);
      const hi = Math.max(hit!.sstart, hit!.send);
      expect({ subject: hit!.sseqid, plus: hit!.sstart <= hit!.send }, s.name).toEqual({ subject: s.subject, plus: s.strand === 'plus' });
      // The hit lies on the query's source stretch (its ends may stop short at a mutation).
      expect(lo, s.name).toBeGreaterThanOrEqual(s.start! - 10);
      expect(hi, s.name).toBeLessThanOrEqual(s.end! + 10);
      expect(hi - lo, s.name).toBeGreaterThan((s.end! - s.start!) / 2);
    }
  });

  it('boot cold - every clone boots and runs init itself, and the result equals the forked job\'s', async () => {
    expect(forked, 'the forked job ran').toBeDefined();
    const cold = await blastJob('cold', 3);
    expect(cold.job).toMatchObject({ boot: 'cold', initData: 'db.fasta' });
    expect(cold.job.snapshotId).toBeUndefined();
    expect(cold.job.parentHost).toBeUndefined();
    expect(cold.text).toBe(forked!.text);
  });

  it('bad specs - unknown initData, init with initData, and an unknown boot mode are refused', async () => {
    const unknown = await submit({ function: 'blast', clones: 2, initData: 'no-such-data' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-flurry-error')).toBe('not_found');
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(/no data "no-such-data"/);
    const both = await submit({ function: 'blast', clones: 2, initData: 'db.fasta', init: b64('>x\nACGT\n') });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { message: string } }).error.message).toMatch(/"init" or "initData"/);
    const boot = await submit({ function: 'blast', clones: 2, initData: 'db.fasta', boot: 'warm' });
    expect(boot.status).toBe(400);
    const badName = await put('..', Buffer.from('x'));
    expect([400, 404]).toContain(badName.status);
    expect((await put('-dash-first', Buffer.from('x'))).status).toBe(400);
  });

  it('oversized uploads - 413, nothing listed, nothing kept in the store, an older version intact', async () => {
    const small = (await (await put('keep.bin', Buffer.from('the old version'))).json()) as DataRecord;
    const tooBig = Buffer.alloc(MAX_DATA_BYTES + 1, 7);
    // Declared too large (Content-Length): refused before any byte is stored.
    const declared = await put('big.bin', tooBig);
    expect(declared.status).toBe(413);
    expect(declared.headers.get('x-flurry-error')).toBe('payload_too_large');
    expect(((await declared.json()) as { error: { message: string } }).error.message).toMatch(/exceeds the limit of 12582912 bytes/);
    // Streamed without a length: refused once the limit is crossed, with chunks already written.
    const streamed = (name: string) => put(name, new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < tooBig.length; at += MiB) controller.enqueue(tooBig.subarray(at, at + MiB));
        controller.close();
      },
    }), { duplex: 'half' } as RequestInit);
    const res = await streamed('big.bin');
    expect(res.status).toBe(413);
    expect(res.headers.get('x-flurry-error')).toBe('payload_too_large');
    // Over an existing name: the old version stays.
    expect((await streamed('keep.bin')).status).toBe(413);
    const names = (await list()).map((d) => d.name);
    expect(names).toEqual(['db.fasta', 'keep.bin']);
    expect(await (await fetch(`${fleet.url}/v1/data/keep.bin`)).json()).toEqual(small);
    expect((await fetch(`${fleet.url}/v1/data/big.bin`)).status).toBe(404);
    // No orphan chunks: the store holds about what is listed.
    const nc = await connect(fleet.adminConnectOptions());
    try {
      const info = await (await jetstreamManager(nc)).streams.info(`OBJ_${dataStoreName('default')}`);
      const listed = (await list()).reduce((n, d) => n + d.bytes, 0);
      expect(info.state.bytes).toBeLessThan(listed + MiB);
    } finally {
      await nc.close();
    }
    // Delete: gone from the list, and a job naming it is refused.
    expect((await fetch(`${fleet.url}/v1/data/keep.bin`, { method: 'DELETE' })).status).toBe(200);
    expect((await list()).map((d) => d.name)).toEqual(['db.fasta']);
    expect((await fetch(`${fleet.url}/v1/data/keep.bin`, { method: 'DELETE' })).status).toBe(404);
    expect((await submit({ function: 'blast', clones: 1, initData: 'keep.bin' })).status).toBe(404);
  });

  it('sdk and cli - data put/ls/get/rm, and job run --init-data --boot cold gives what the SDK\'s forked run gives', async () => {
    const flurry = new Flurry({ url: fleet.url, timeoutMs: 120_000 });
    const small = toFasta(db.map((r) => ({ name: r.name, seq: r.seq.slice(0, 20_000) })));
    const queries = toFasta(parseFasta(queryFasta).slice(0, 6));
    const scratch = await mkdtemp(join(tmpdir(), 'flurry-data-'));
    const cli = async (...args: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, [join(repoRoot, 'sdk', 'dist', 'cli.js'), '--url', fleet.url, ...args], { maxBuffer: 64 * MiB });
      return stdout;
    };
    try {
      await writeFile(join(scratch, 'small.fasta'), small);
      await writeFile(join(scratch, 'queries.fasta'), queries);
      const put = JSON.parse(await cli('--json', 'data', 'put', 'small.fasta', join(scratch, 'small.fasta'))) as DataRecord;
      expect(put).toMatchObject({ name: 'small.fasta', bytes: Buffer.byteLength(small), digest: `sha256:${createHash('sha256').update(small).digest('hex')}` });
      expect((JSON.parse(await cli('--json', 'data', 'ls')) as DataRecord[]).map((d) => d.name)).toContain('small.fasta');
      expect(await cli('data', 'ls')).toMatch(/small\.fasta/);
      expect(await flurry.data.get('small.fasta')).toEqual(put);
      const viaSdk = await flurry.jobs.run({ function: 'blast', clones: 2, initData: 'small.fasta', input: queries });
      const viaCli = await cli('job', 'run', 'blast', '--clones', '2', '--init-data', 'small.fasta', '--boot', 'cold', '--input', join(scratch, 'queries.fasta'));
      expect(Buffer.from(viaSdk as Uint8Array).toString()).toBe(viaCli);
      expect(viaCli).toMatch(/^q\d{3}\tchr\d/m);
      // The SDK's job kept its parent: the next job of the same data reuses it; --no-keep-parent boots its own.
      const runJson = async (...extra: string[]) => JSON.parse(await cli('--json', 'job', 'run', 'blast', '--clones', '2', '--init-data', 'small.fasta', '--input', join(scratch, 'queries.fasta'), ...extra)) as { job: JobRecord; result: string };
      const reused = await runJson();
      expect(reused.job).toMatchObject({ parentReused: true, initMs: 0 });
      expect(reused.result).toBe(viaCli);
      const own = await runJson('--no-keep-parent');
      expect(own.job.parentReused).toBe(false);
      expect(own.job.snapshotId).not.toBe(reused.job.snapshotId);
      expect(own.result).toBe(viaCli);
      const sdkPut = await flurry.data.put('note.txt', 'hello');
      expect(sdkPut).toMatchObject({ name: 'note.txt', bytes: 5 });
      await flurry.data.delete('note.txt');
      await cli('data', 'rm', 'small.fasta');
      expect((await flurry.data.list()).map((d) => d.name)).toEqual(['db.fasta']);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
