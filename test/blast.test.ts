// The blast guest (functions/blast, C) as a fork-join job over a real fleet,
// checked against NCBI BLAST+ on real data: the lambda phage genome and
// D. melanogaster upstream sequences (Debian packages, fetched into
// test/.data/blast), queried with mutated substrings and random sequences.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '@flurry/core';
import { LocalFleet } from '../infra/src/local-fleet.js';
import { repoRoot } from '../infra/src/services.js';
import {
  ensureNcbiBlast, makeQueries, obtainBlastData, parseFasta, parseTabular, runNcbiBlastn, toFasta, type TabularHit,
} from '../infra/src/datasets.js';
import { deploy, guestProgram, missingCGuests } from './helpers/functions.js';
import { gatewayApi } from './helpers/gateway-api.js';
import { b64, runJob } from './helpers/jobs.js';

const DM3_SEQUENCES = 1200; // with lambda: 2.45 Mbp, 1201 sequences
const CLONES = 8;

// Without the guest (no clang here) there is nothing to fetch the data for.
const withoutGuest = missingCGuests('blast');
const data = withoutGuest === undefined ? obtainBlastData() : ({ ok: false, reason: withoutGuest } as const);
const ncbi = data.ok ? ensureNcbiBlast() : undefined;
const skipReason = !data.ok ? data.reason : ncbi && !ncbi.ok ? ncbi.reason : undefined;
if (skipReason) console.warn(`blast tests skipped: ${skipReason}`);

const plus = (h: TabularHit) => h.sstart <= h.send;

/** Hits by query, in output order. */
function byQuery(hits: TabularHit[]): Map<string, TabularHit[]> {
  const m = new Map<string, TabularHit[]>();
  for (const h of hits) m.set(h.qseqid, [...(m.get(h.qseqid) ?? []), h]);
  return m;
}

const near = (a: TabularHit, b: TabularHit, slack: number) =>
  a.sseqid === b.sseqid && plus(a) === plus(b) &&
  Math.abs(a.qstart - b.qstart) <= slack && Math.abs(a.qend - b.qend) <= slack &&
  Math.abs(a.sstart - b.sstart) <= slack && Math.abs(a.send - b.send) <= slack;

/** E-values agree within a factor of 2 (NCBI prints 0.0 below 1e-180). */
const evalueClose = (ours: number, theirs: number) =>
  ours === 0 || theirs === 0 ? Math.max(ours, theirs) < 1e-170 : ours / theirs <= 2 && theirs / ours <= 2;

describe.skipIf(skipReason !== undefined)('blast', () => {
  let fleet: LocalFleet;

  beforeAll(async () => {
    fleet = await LocalFleet.start({
      hosts: 3,
      hostEnv: { FLURRY_GUEST_THREADS: '2', LOG_LEVEL: 'warn' },
      gatewayEnv: { FLURRY_MAX_BODY: String(6 * 1024 * 1024), LOG_LEVEL: 'warn' },
    });
    expect((await deploy(fleet.url, 'blast', guestProgram('blast'))).ok).toBe(true);
  });

  afterAll(async () => {
    await fleet?.stop();
  });

  /** Submits a job and polls it to its end; the job record, and the result text when it is done. */
  async function blastJob(spec: Record<string, unknown>): Promise<{ job: JobRecord; text: string }> {
    // Within the tests' 60 s, so that a job that does not end fails as such.
    const job = await runJob(gatewayApi(() => fleet.url), { function: 'blast', timeoutMs: 60_000, retries: 0, ...spec }, { timeoutMs: 50_000 });
    if (job.state !== 'done') return { job, text: '' };
    const out = await fetch(`${fleet.url}/v1/jobs/${job.id}/result`);
    expect(out.status).toBe(200);
    return { job, text: Buffer.from(await out.arrayBuffer()).toString('utf8') };
  }

  /** The whole query set as every clone's input: each clone searches its share. */
  async function search(db: string | Buffer, queryFasta: string, clones: number): Promise<{ job: JobRecord; text: string }> {
    const r = await blastJob({ clones, init: b64(db), input: b64(queryFasta) });
    expect(r.job.state, JSON.stringify(r.job.error ?? r.job.errors)).toBe('done');
    return r;
  }

  it(`blastn - ${CLONES} clones over 3 hosts agree with NCBI blastn -task blastn on lambda + dm3 upstream`, async () => {
    if (!data.ok) return;
    const db = [data.value.lambda, ...data.value.dm3.slice(0, DM3_SEQUENCES)];
    const dbFasta = toFasta(db);
    const { fasta: queryFasta, sources } = makeQueries(db, 60, 4, 7);

    let t = performance.now();
    const ncbiText = runNcbiBlastn(dbFasta, queryFasta).tabular;
    const theirs = parseTabular(ncbiText);
    const ncbiMs = performance.now() - t;
    t = performance.now();
    const [{ job, text }, single] = await Promise.all([search(dbFasta, queryFasta, CLONES), search(dbFasta, queryFasta, 1)]);
    const jobMs = performance.now() - t;
    const ours = parseTabular(text);

    // The forked table is the single instance's, byte for byte; each clone searched a
    // share of the queries (dealt by estimated work, so not a contiguous slice) and said so.
    expect(text).toBe(single.text);
    let searched = 0;
    for (let i = 0; i < CLONES; i++) {
      const out = Buffer.from(await (await fetch(`${fleet.url}/v1/jobs/${job.id}/clones/${i}/output`)).arrayBuffer()).toString();
      const head = /^# blast clone (\d+)\/(\d+): (\d+) of (\d+) queries, input [0-9a-f]{16}\n/.exec(out);
      expect(head, out.slice(0, 100)).not.toBeNull();
      expect([Number(head![1]), Number(head![2]), Number(head![4])]).toEqual([i, CLONES, sources.length]);
      expect(Number(head![3])).toBeGreaterThan(0);
      expect(out.match(/^# query \d+$/gm)?.length ?? 0).toBe(Number(head![3]));
      searched += Number(head![3]);
    }
    expect(searched).toBe(sources.length);

    // Well-formed, in query order, E <= 10.
    expect(text.endsWith('\n')).toBe(true);
    for (const h of ours) {
      expect(h.qstart).toBeLessThanOrEqual(h.qend);
      expect(h.evalue).toBeLessThanOrEqual(10);
      expect(h.pident).toBeGreaterThan(0);
    }
    const order = sources.map((s) => s.name);
    const seen = [...new Set(ours.map((h) => h.qseqid))].map((q) => order.indexOf(q));
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(job.clonesDetail.map((c) => c.host)).size).toBeGreaterThan(1);

    // Best hits: same subject (or one NCBI ranks equal), strand and coordinates within 5 bases.
    const ourBy = byQuery(ours);
    const theirBy = byQuery(theirs);
    const bestMisses: string[] = [];
    for (const [q, hits] of theirBy) {
      const top = hits[0]!;
      const tied = hits.filter((h) => h.bitscore === top.bitscore);
      const best = ourBy.get(q)?.[0];
      if (!best || !tied.some((h) => near(best, h, 5))) bestMisses.push(`${q}: ncbi ${JSON.stringify(top)} flurry ${JSON.stringify(best)}`);
    }
    // And every mutated substring is found where it came from.
    for (const s of sources.filter((s) => s.subject)) expect(ourBy.get(s.name)?.[0], s.name).toBeDefined();

    // Recall of NCBI's significant hits, with E-values within a factor of 2.
    const significant = theirs.filter((h) => h.evalue < 1e-10);
    let found = 0;
    let evalueOk = 0;
    for (const h of significant) {
      const candidates = (ourBy.get(h.qseqid) ?? []).filter((o) =>
        o.sseqid === h.sseqid && plus(o) === plus(h) && Math.min(o.qend, h.qend) - Math.max(o.qstart, h.qstart) > (h.qend - h.qstart) / 2);
      if (candidates.length === 0) continue;
      found++;
      const o = candidates.reduce((a, b) => (Math.abs(a.sstart - h.sstart) + Math.abs(a.send - h.send) <= Math.abs(b.sstart - h.sstart) + Math.abs(b.send - h.send) ? a : b));
      if (evalueClose(o.evalue, h.evalue)) evalueOk++;
    }
    // All of NCBI's hits (down to E = 10), for the record.
    const anyFound = theirs.filter((h) => (ourBy.get(h.qseqid) ?? []).some((o) => near(o, h, 5))).length;
    const ourLines = new Set(text.split('\n'));
    const identical = ncbiText.split('\n').filter((l) => l && ourLines.has(l)).length;
    // Random queries: nothing significant (a chance 20-odd base match is E ~ 1e-4).
    for (const s of sources.filter((s) => !s.subject)) {
      for (const h of ourBy.get(s.name) ?? []) expect(h.evalue, `${s.name} ${JSON.stringify(h)}`).toBeGreaterThan(1e-6);
    }

    const runMs = job.clonesDetail.map((c) => c.runMs ?? 0);
    const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : '100') + '%';
    console.log(
      `blast: ${db.length} sequences, ${sources.length} queries, ${CLONES} clones; job ${jobMs.toFixed(0)} ms ` +
        `(clone runs ${Math.min(...runMs).toFixed(0)}-${Math.max(...runMs).toFixed(0)} ms), ncbi blastn ${ncbiMs.toFixed(0)} ms\n` +
        `  best hit agrees for ${theirBy.size - bestMisses.length}/${theirBy.size} queries with NCBI hits (${pct(theirBy.size - bestMisses.length, theirBy.size)})\n` +
        `  E < 1e-10: ${found}/${significant.length} found (${pct(found, significant.length)}), E-value within 2x for ${evalueOk}/${found}\n` +
        `  all NCBI hits (E <= 10) matched within 5 bases: ${anyFound}/${theirs.length} (${pct(anyFound, theirs.length)}); flurry reports ${ours.length}\n` +
        `  identical lines (all 12 columns): ${identical}/${theirs.length} (${pct(identical, theirs.length)})`,
    );
    expect(bestMisses, bestMisses.join('\n')).toEqual([]);
    expect(found / significant.length).toBeGreaterThanOrEqual(0.95);
    expect(evalueOk / found).toBeGreaterThanOrEqual(0.95);
    // Down to E = 10 too (what is left are ties broken another way).
    expect(anyFound / theirs.length).toBeGreaterThanOrEqual(0.9);
    // With DUST on the queries, as blastn's default, the tables agree nearly line for line.
    expect(identical / theirs.length).toBeGreaterThanOrEqual(0.95);
    expect(ours.length).toBeLessThanOrEqual(theirs.length * 1.05);
  }, 60_000);

  it('edge inputs - gzip database; empty and short queries, CRLF, lower case and N runs; reduce keeps input order', async () => {
    const db = parseFasta(readFileSync(join(repoRoot, 'functions', 'examples', 'blast', 'db.fa'), 'utf8'));
    const piece = db[0]!.seq.slice(1000, 1400);
    const withN = piece.slice(0, 150) + 'N'.repeat(20) + piece.slice(170);
    const queries =
      '>short\nACGTACGTAC\n>empty\n' +
      `>crlf_lower\r\n${withN.toLowerCase().replace(/(.{60})/g, '$1\r\n')}\r\n` +
      `>upper\n${withN}\n`;
    // More clones than queries: some clones search none.
    const { text } = await search(gzipSync(toFasta(db)), queries, 6);
    const hits = byQuery(parseTabular(text));
    expect([...hits.keys()]).toEqual(['crlf_lower', 'upper']);
    const strip = (h: TabularHit) => ({ ...h, qseqid: '' });
    expect(hits.get('crlf_lower')!.map(strip)).toEqual(hits.get('upper')!.map(strip));
    // The N run splits nothing: one alignment over the whole piece, the Ns as mismatches.
    expect(hits.get('upper')![0]).toMatchObject({ sseqid: db[0]!.name, qstart: 1, qend: 400, sstart: 1001, send: 1400, length: 400, mismatch: 20, gapopen: 0 });
    expect(text.split('\n').some((l) => l.startsWith('#'))).toBe(false);
  });

  it('clones given different query sets - reduce refuses them and the job fails', async () => {
    const db = readFileSync(join(repoRoot, 'functions', 'examples', 'blast', 'db.fa'), 'utf8');
    const piece = parseFasta(db)[0]!.seq.slice(1000, 1400);
    const { job } = await blastJob({ clones: 2, init: b64(db), inputs: [b64(`>a\n${piece}\n`), b64(`>b\n${piece}\n`)] });
    expect(job.state).toBe('failed');
    expect(job.error, JSON.stringify(job)).toMatchObject({ code: 'guest_error', message: 'reduce failed: guest returned status 2' });
  });
});
