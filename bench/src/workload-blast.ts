/**
 * The `blast` workload (BLASTN, functions/blast) on a running fleet, against
 * NCBI BLAST+ on the same database and queries.
 *
 *   singleMs    a 1-clone job's clone run time (clonesDetail[0].runMs): one warm
 *               instance (forked from the parent that indexed the database)
 *               searching every query; the guest has no handle()
 *   jobMs       POST /v1/jobs until its `done` event, `clones` clones, the
 *               queries split evenly (inputs, one FASTA per clone)
 *   coldStartMs a 1-clone job with one query on a freshly deployed copy of the
 *               module: compile, instantiate, init (parse and index the whole
 *               database), snapshot, fork, run, reduce; an upper bound of what
 *               one cold instance pays before it starts working
 *   ncbiMs      `blastn -task blastn -outfmt 6 -evalue 10 -num_threads T`
 *               (makeblastdb is run first and not timed, as init is not in idealMs)
 *
 * Data: the lambda phage genome and the first `dm3` D. melanogaster upstream
 * sequences, fetched from Debian packages when first needed (infra's
 * datasets.ts, shared with test/blast.test.ts), and queries from the same
 * generator the test uses.
 */
import { ensureNcbiBlast, makeQueries, obtainBlastData, parseFasta, runNcbiBlastn, toFasta, type FastaRecord } from '@flurry/infra';
import { deployWasm, guestWasm, round, singleAndMany, timedJob, type Phases } from './workload-render.js';

export interface BlastOptions { fleetUrl: string; clones: number; cores: number; reps?: number; dm3?: number; queries?: number; random?: number }

export interface BlastMeasurement {
  sequences: number; bases: number; queries: number; clones: number;
  jobMs: number; singleMs: number; coldStartMs: number; ncbiMs: number | null; ncbiThreads: number; ncbiVersion: string | null;
  identical: boolean; lines: number; ncbiLines: number | null; hosts: number;
  jobRuns: number[]; singleRuns: number[]; phases: Phases; cloneRunMs: number[];
}

/** The database: lambda and the first `dm3Count` dm3 upstream sequences. */
export function blastData(dm3Count: number): { db: FastaRecord[] } | { reason: string } {
  const data = obtainBlastData();
  if (!data.ok) return { reason: data.reason };
  return { db: [data.value.lambda, ...data.value.dm3.slice(0, dm3Count)] };
}

export async function measureBlast(opts: BlastOptions): Promise<BlastMeasurement> {
  const url = opts.fleetUrl.replace(/\/$/, '');
  const data = blastData(opts.dm3 ?? 1200);
  if ('reason' in data) throw new Error(data.reason);
  const db = data.db;
  const dbFasta = toFasta(db);
  const queries = parseFasta(makeQueries(db, opts.queries ?? 600, opts.random ?? 40, 7).fasta);
  const queryFasta = toFasta(queries);
  const split = (n: number) => Array.from({ length: n }, (_, i) =>
    toFasta(queries.slice(Math.floor((i * queries.length) / n), Math.floor(((i + 1) * queries.length) / n))));
  const wasm = guestWasm('blast');

  const coldName = `blast-cold-${Date.now().toString(36)}`;
  await deployWasm(url, coldName, wasm);
  const cold = await timedJob(url, { function: coldName, clones: 1, init: dbFasta, inputs: [toFasta(queries.slice(0, 1))] });
  await fetch(`${url}/v1/functions/${coldName}`, { method: 'DELETE' });

  await deployWasm(url, 'blast', wasm);
  const { single, many, singleRuns, jobRuns, identical } = await singleAndMany(url, opts.reps ?? 1,
    () => timedJob(url, { function: 'blast', clones: 1, init: dbFasta, inputs: [queryFasta] }),
    () => timedJob(url, { function: 'blast', clones: opts.clones, init: dbFasta, inputs: split(opts.clones) }));

  let ncbiMs: number | null = null, ncbiLines: number | null = null, ncbiVersion: string | null = null;
  const ncbi = ensureNcbiBlast();
  if (ncbi.ok) {
    ncbiVersion = ncbi.value;
    const r = runNcbiBlastn(dbFasta, queryFasta, opts.cores);
    ncbiMs = r.ms;
    ncbiLines = r.tabular.split('\n').filter((l) => l.trim()).length;
  }
  return {
    sequences: db.length, bases: db.reduce((n, r) => n + r.seq.length, 0), queries: queries.length, clones: opts.clones,
    jobMs: round(many.jobMs), singleMs: round(single.job.clonesDetail[0]?.runMs ?? single.jobMs), coldStartMs: round(cold.jobMs),
    ncbiMs: ncbiMs === null ? null : round(ncbiMs), ncbiThreads: opts.cores, ncbiVersion,
    identical, jobRuns, singleRuns, phases: many.phases, cloneRunMs: many.job.clonesDetail.map((c) => round(c.runMs ?? NaN)), lines: many.output.toString('utf8').split('\n').filter((l) => l.trim()).length, ncbiLines,
    hosts: new Set(many.job.clonesDetail.map((c) => c.host)).size,
  };
}
