/**
 * The `blast` workload (BLASTN, functions/blast) for the workloads bench, and
 * its NCBI BLAST+ baseline on the same database and queries.
 *
 * Database: `dbMbp` million bases of real sequence (default 30): lambda, E.
 * coli 536, four K. pneumoniae genomes, then D. melanogaster upstream
 * sequences (infra's blastDatabase, fetched from Debian packages when first
 * needed). It is uploaded gzipped once with PUT /v1/data/:name and jobs name
 * it as `initData`; a gateway without the data API gets it inline as `init`.
 * Queries: mutated substrings of it (picked by base, so the genomes get
 * their share) and random sequences, from the generator the test uses; the
 * whole set is every clone's `input`, each clone searches its share.
 * Tasks: one per query (the guest numbers them by estimated work, largest
 * first): query times differ by orders of magnitude and cannot be foreseen
 * well (gapped extensions), so the smallest unit balances best; but a query
 * takes ~12 ms on average, and each task costs the fleet a request and a
 * stored result (the fleet's CPU was 16% of a 320-task job's: docs/benchmarks.md).
 *
 *   ncbiMs   `blastn -task blastn -outfmt 6 -evalue 10 -num_threads <cores>`
 *            (makeblastdb first, not timed, as the parent's init is not in idealMs)
 */
import { gzipSync } from 'node:zlib';
import { blastDatabase, ensureNcbiBlast, makeQueries, runNcbiBlastn, toFasta } from '@flurry/infra';
import { tenths, type Workload } from './workload-jobs.js';

export interface BlastSize { dbMbp: number; queries: number; random: number }

export interface BlastPrepared extends Workload {
  describe: string; sequences: number; bases: number; queryCount: number;
  dbFasta: string; queryFasta: string;
  /** How the database reached the gateway: uploaded (`initData`) or inline (`init`). */
  database: { via: 'initData'; name: string; gzipBytes: number; uploadMs: number } | { via: 'init'; gzipBytes: number; reason: string };
}

/** The database (FASTA, and gzipped as init data) and the queries of a blast run, made here from the same generator every time. */
export function blastInputs(size: BlastSize): { dbFasta: string; gz: Buffer; queryFasta: string; queryCount: number; sequences: number; bases: number } {
  const db = blastDatabase(size.dbMbp);
  if (!db.ok) throw new Error(`blast: no database: ${db.reason}`);
  const dbFasta = toFasta(db.value);
  return {
    dbFasta, gz: gzipSync(dbFasta), queryFasta: makeQueries(db.value, size.queries, size.random, 7, 'base').fasta,
    queryCount: size.queries + size.random, sequences: db.value.length, bases: db.value.reduce((n, r) => n + r.seq.length, 0),
  };
}

export async function blastWorkload(url: string, fn: string, size: BlastSize): Promise<BlastPrepared> {
  const { dbFasta, gz, queryFasta, queryCount, sequences, bases } = blastInputs(size);
  const name = `${fn}-db.fa.gz`;
  const upload = () => fetch(`${url}/v1/data/${name}`, { method: 'PUT', body: new Uint8Array(gz), headers: { 'content-type': 'application/octet-stream' } });
  // Making the database blocks this process for seconds, during which the
  // gateway closes idle keep-alive connections that the client has not yet
  // seen closed: writing the body to one fails (EPIPE). A pause lets the
  // closes through; a few tries cover what is left.
  const pause = () => new Promise((resolve) => setTimeout(resolve, 200));
  await pause();
  const started = performance.now();
  let res: Response | undefined;
  for (let attempt = 1; !res; attempt++) {
    try {
      res = await upload();
    } catch (err) {
      if (attempt === 3) throw err;
      await pause();
    }
  }
  const uploadMs = performance.now() - started;
  let database: BlastPrepared['database'];
  let init: Workload['init'];
  if (res.status === 201) {
    database = { via: 'initData', name, gzipBytes: gz.length, uploadMs: tenths(uploadMs) };
    init = { initData: name };
  } else if (res.status === 404 || res.status === 405) {
    database = { via: 'init', gzipBytes: gz.length, reason: `PUT /v1/data answered ${res.status}: data API not supported by this gateway, the database goes inline` };
    init = { init: gz };
  } else {
    throw new Error(`blast: upload of the database: ${res.status} ${await res.text()}`);
  }
  return {
    function: fn, init, input: queryFasta, tasks: () => queryCount, same: (a, b) => a.equals(b),
    describe: `${sequences} sequences (${bases} bp: lambda, E. coli 536, 4 K. pneumoniae, dm3 upstream), ${queryCount} queries`,
    sequences, bases, queryCount, dbFasta, queryFasta, database,
  };
}

/** NCBI blastn on the same database and queries with `threads` threads; null (with why) when BLAST+ cannot be had. */
export function ncbiBaseline(w: BlastPrepared, threads: number): { ncbiMs: number; ncbiLines: number; ncbiVersion: string } | { ncbiMissing: string } {
  const ncbi = ensureNcbiBlast();
  if (!ncbi.ok) return { ncbiMissing: ncbi.reason };
  const r = runNcbiBlastn(w.dbFasta, w.queryFasta, threads);
  return { ncbiMs: tenths(r.ms), ncbiLines: r.tabular.split('\n').filter((l) => l.trim()).length, ncbiVersion: ncbi.value };
}
