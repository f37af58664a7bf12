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
 * sequences, as cached in test/.data/blast by test/helpers/blast-data.ts (run
 * test/blast.test.ts once to fetch them); queries from the same generator as
 * that helper's makeQueries (copied here, since bench/ compiles only its own
 * sources: keep the two in step).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@flurry/infra';
import { deployWasm, guestWasm, round, singleAndMany, timedJob, type Phases } from './workload-render.js';

export interface BlastOptions { fleetUrl: string; clones: number; cores: number; reps?: number; dm3?: number; queries?: number; random?: number }

export interface BlastMeasurement {
  sequences: number; bases: number; queries: number; clones: number;
  jobMs: number; singleMs: number; coldStartMs: number; ncbiMs: number | null; ncbiThreads: number; ncbiVersion: string | null;
  identical: boolean; lines: number; ncbiLines: number | null; hosts: number;
  jobRuns: number[]; singleRuns: number[]; phases: Phases; cloneRunMs: number[];
}

interface FastaRecord { name: string; seq: string }

const DATA = join(repoRoot, 'test', '.data', 'blast');

function parseFasta(text: string): FastaRecord[] {
  const out: FastaRecord[] = [];
  for (const block of text.split('>').slice(1)) {
    const nl = block.indexOf('\n');
    const header = nl < 0 ? block : block.slice(0, nl);
    out.push({ name: header.trim().split(/\s+/)[0] ?? '', seq: (nl < 0 ? '' : block.slice(nl + 1)).replace(/\s+/g, '').toUpperCase() });
  }
  return out;
}

const toFasta = (records: FastaRecord[]) => records.map((r) => `>${r.name}\n${r.seq.replace(/(.{80})/g, '$1\n').replace(/\n$/, '')}\n`).join('');

/** The cached data of test/helpers/blast-data.ts (obtainBlastData), or why not. */
export function blastData(dm3Count: number): { db: FastaRecord[] } | { reason: string } {
  const lambdaFile = join(DATA, 'lambda_virus.fa');
  const dm3File = join(DATA, 'dm3_upstream2000.fa');
  if (!existsSync(lambdaFile) || !existsSync(dm3File)) return { reason: `${lambdaFile} or ${dm3File} missing: run npx vitest run test/blast.test.ts once (it fetches them)` };
  const lambda = parseFasta(readFileSync(lambdaFile, 'utf8'))[0]!;
  lambda.name = 'lambda_NC_001416';
  return { db: [lambda, ...parseFasta(readFileSync(dm3File, 'utf8')).slice(0, dm3Count)] };
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
const revcomp = (s: string) => [...s].reverse().map((c) => COMP[c] ?? 'N').join('');

/** test/helpers/blast-data.ts makeQueries: mutated 200-800 bp substrings, then random 300 bp sequences. */
function makeQueries(db: FastaRecord[], n: number, random: number, seed: number): FastaRecord[] {
  const next = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const base = () => 'ACGT'[int(0, 3)]!;
  const records: FastaRecord[] = [];
  for (let k = 0; k < n; k++) {
    const subject = k % 4 === 0 ? db[0]! : db[int(0, db.length - 1)]!;
    const len = Math.min(int(200, 800), subject.seq.length);
    const start = int(0, subject.seq.length - len);
    const piece = subject.seq.slice(start, start + len);
    if ((piece.match(/N/g)?.length ?? 0) > len / 10) { k--; continue; }
    const subRate = 0.02 + next() * 0.04;
    let mutated = '';
    for (let i = 0; i < piece.length; i++) {
      const r = next();
      if (r < subRate) mutated += 'ACGT'.replace(piece[i]!, '')[int(0, 2)] ?? base();
      else if (r < subRate + 0.003) { i += int(0, 2); }
      else if (r < subRate + 0.006) mutated += piece[i]! + Array.from({ length: int(1, 3) }, base).join('');
      else mutated += piece[i]!;
    }
    const strand = next() < 0.5 ? 'plus' : 'minus';
    records.push({ name: `q${String(k + 1).padStart(3, '0')}`, seq: strand === 'plus' ? mutated : revcomp(mutated) });
  }
  for (let k = 0; k < random; k++) records.push({ name: `r${String(k + 1).padStart(3, '0')}`, seq: Array.from({ length: 300 }, base).join('') });
  return records;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export async function measureBlast(opts: BlastOptions): Promise<BlastMeasurement> {
  const url = opts.fleetUrl.replace(/\/$/, '');
  const data = blastData(opts.dm3 ?? 1200);
  if ('reason' in data) throw new Error(data.reason);
  const db = data.db;
  const dbFasta = toFasta(db);
  const queries = makeQueries(db, opts.queries ?? 600, opts.random ?? 40, 7);
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
  if (has('makeblastdb') && has('blastn')) {
    const dir = mkdtempSync(join(tmpdir(), 'flurry-blast-'));
    try {
      writeFileSync(join(dir, 'db.fa'), dbFasta);
      writeFileSync(join(dir, 'queries.fa'), queryFasta);
      const mk = spawnSync('makeblastdb', ['-in', 'db.fa', '-dbtype', 'nucl', '-out', 'db'], { cwd: dir, encoding: 'utf8' });
      if (mk.status !== 0) throw new Error(`makeblastdb failed: ${mk.stderr}`);
      ncbiVersion = spawnSync('blastn', ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? null;
      const started = performance.now();
      const r = spawnSync('blastn', ['-task', 'blastn', '-db', 'db', '-query', 'queries.fa', '-outfmt', '6', '-evalue', '10', '-num_threads', String(opts.cores)],
        { cwd: dir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      ncbiMs = performance.now() - started;
      if (r.status !== 0) throw new Error(`blastn failed: ${r.stderr}`);
      ncbiLines = r.stdout.split('\n').filter((l) => l.trim()).length;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    sequences: db.length, bases: db.reduce((n, r) => n + r.seq.length, 0), queries: queries.length, clones: opts.clones,
    jobMs: round(many.jobMs), singleMs: round(single.job.clonesDetail[0]?.runMs ?? single.jobMs), coldStartMs: round(cold.jobMs),
    ncbiMs: ncbiMs === null ? null : round(ncbiMs), ncbiThreads: opts.cores, ncbiVersion,
    identical, jobRuns, singleRuns, phases: many.phases, cloneRunMs: many.job.clonesDetail.map((c) => round(c.runMs ?? NaN)), lines: many.output.toString('utf8').split('\n').filter((l) => l.trim()).length, ncbiLines,
    hosts: new Set(many.job.clonesDetail.map((c) => c.host)).size,
  };
}
