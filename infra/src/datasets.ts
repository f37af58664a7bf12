/**
 * Real nucleotide data for the blast guest's tests and benchmark, fetched when
 * first needed from Debian packages into test/.data/blast (git-ignored):
 *
 *   bowtie2-examples    reference/lambda_virus.fa.gz (the lambda phage genome, 48,502 bp)
 *   r-bioc-biostrings   extdata/dm3_upstream2000.fa.gz (26,454 D. melanogaster upstream
 *                       sequences of 2,000 bp: 52.9 Mbp)
 *   bowtie-examples     genomes/NC_008253.fna.gz (Escherichia coli 536, 4.94 Mbp)
 *   kleborate-examples  data/*.fna.xz (four Klebsiella pneumoniae genomes with their
 *                       plasmids: HS11286, Kp1084, MGH 78578, NTUH-K2044; 22.2 Mbp)
 *
 * blastDatabase(mbp) joins them into a database of a chosen size (the bench's).
 *
 * `apt-get download` + `dpkg-deb -x` need root on Debian; when that is not
 * possible the helpers answer a reason to skip instead. Also: NCBI BLAST+
 * (`ncbi-blast+`, installed with apt as root when missing), and the queries:
 * real substrings of the database with mismatches and small indels
 * (deterministic), plus random sequences that should not hit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { repoRoot } from './services.js';
import { seededRandom } from './seeded-random.js';

export const BLAST_DATA_DIR = join(repoRoot, 'test', '.data', 'blast');

export interface FastaRecord { name: string; seq: string }

export type Prepared<T> = { ok: true; value: T } | { ok: false; reason: string };

const isRoot = () => process.getuid?.() === 0;
const run = (cmd: string, args: string[], cwd?: string) =>
  spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 256 * 1024 * 1024 });
const has = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function parseFasta(text: string): FastaRecord[] {
  const out: FastaRecord[] = [];
  for (const block of text.split('>').slice(1)) {
    const nl = block.indexOf('\n');
    const header = nl < 0 ? block : block.slice(0, nl);
    out.push({ name: header.trim().split(/\s+/)[0] ?? '', seq: (nl < 0 ? '' : block.slice(nl + 1)).replace(/\s+/g, '').toUpperCase() });
  }
  return out;
}

export function toFasta(records: FastaRecord[]): string {
  return records.map((r) => `>${r.name}\n${r.seq.replace(/(.{80})/g, '$1\n').replace(/\n$/, '')}\n`).join('');
}

/** Downloads Debian packages and extracts them into `tree` (no install); null, or why it failed. */
function extractPackages(pkgs: string[], debs: string, tree: string): string | null {
  if (!existsSync('/etc/debian_version') || !has('apt-get') || !has('dpkg-deb')) return 'not Debian (needs apt-get and dpkg-deb to fetch the data)';
  if (!isRoot()) return 'fetching the Debian packages with the data needs root';
  mkdirSync(debs, { recursive: true });
  const present = () => readdirSync(debs).filter((f) => f.endsWith('.deb'));
  const missing = () => pkgs.filter((p) => !present().some((f) => f.startsWith(`${p}_`)));
  if (missing().length > 0) {
    let r = run('apt-get', ['download', ...missing()], debs);
    if (r.status !== 0) {
      run('apt-get', ['update']);
      r = run('apt-get', ['download', ...missing()], debs);
      if (r.status !== 0) return `apt-get download ${missing().join(' ')} failed: ${r.stderr.trim().slice(0, 300)}`;
    }
  }
  for (const deb of present().filter((f) => pkgs.some((p) => f.startsWith(`${p}_`)))) {
    const x = run('dpkg-deb', ['-x', join(debs, deb), tree]);
    if (x.status !== 0) return `dpkg-deb -x ${deb} failed: ${x.stderr.trim()}`;
  }
  return null;
}

/** The lambda genome and the dm3 upstream sequences, from the Debian packages (cached). */
export function obtainBlastData(): Prepared<{ lambda: FastaRecord; dm3: FastaRecord[] }> {
  mkdirSync(BLAST_DATA_DIR, { recursive: true });
  const lambdaFile = join(BLAST_DATA_DIR, 'lambda_virus.fa');
  const dm3File = join(BLAST_DATA_DIR, 'dm3_upstream2000.fa');
  if (!existsSync(lambdaFile) || !existsSync(dm3File)) {
    const tree = join(BLAST_DATA_DIR, 'tree');
    const failed = extractPackages(['bowtie2-examples', 'r-bioc-biostrings'], join(BLAST_DATA_DIR, 'debs'), tree);
    if (failed) return { ok: false, reason: failed };
    const lambdaGz = findFile(tree, 'lambda_virus.fa.gz');
    const dm3Gz = findFile(tree, 'dm3_upstream2000.fa.gz');
    if (!lambdaGz || !dm3Gz) return { ok: false, reason: 'lambda_virus.fa.gz or dm3_upstream2000.fa.gz not found in the packages' };
    writeFileSync(lambdaFile, gunzipSync(readFileSync(lambdaGz)));
    writeFileSync(dm3File, gunzipSync(readFileSync(dm3Gz)));
  }
  const lambda = parseFasta(readFileSync(lambdaFile, 'utf8'))[0]!;
  // The header is "gi|9626243|ref|NC_001416.1| ..."; a plain id keeps BLAST+ from parsing it.
  lambda.name = 'lambda_NC_001416';
  return { ok: true, value: { lambda, dm3: parseFasta(readFileSync(dm3File, 'utf8')) } };
}

/** The bacterial genomes (compressed file names in their packages), in the order blastDatabase uses them. */
const GENOMES: { pkg: string; file: string }[] = [
  { pkg: 'bowtie-examples', file: 'NC_008253.fna.gz' },
  { pkg: 'kleborate-examples', file: 'Klebs_HS11286.fna.xz' },
  { pkg: 'kleborate-examples', file: 'Klebs_Kp1084.fna.xz' },
  { pkg: 'kleborate-examples', file: 'MGH78578.fna.xz' },
  { pkg: 'kleborate-examples', file: 'NTUH-K2044.fna.xz' },
];

/**
 * E. coli 536 and four K. pneumoniae genomes with their plasmids (cached in
 * test/.data/blast/genomes.fa). Ids are the accessions with `.` and `|` made
 * `_` (NC_008253_1, CP003200_1), which BLAST+ takes as plain ids.
 */
export function obtainGenomes(): Prepared<FastaRecord[]> {
  mkdirSync(BLAST_DATA_DIR, { recursive: true });
  const cached = join(BLAST_DATA_DIR, 'genomes.fa');
  if (!existsSync(cached)) {
    const tree = join(BLAST_DATA_DIR, 'tree');
    const failed = extractPackages([...new Set(GENOMES.map((g) => g.pkg))], join(BLAST_DATA_DIR, 'debs'), tree);
    if (failed) return { ok: false, reason: failed };
    if (!has('xz')) return { ok: false, reason: 'xz is missing (apt-get install xz-utils) to unpack the Klebsiella genomes' };
    const texts: string[] = [];
    for (const g of GENOMES) {
      const file = findFile(tree, g.file);
      if (!file) return { ok: false, reason: `${g.file} not found in ${g.pkg}` };
      const text = g.file.endsWith('.gz') ? gunzipSync(readFileSync(file)).toString('utf8') : run('xz', ['-dc', file]).stdout;
      if (!text.startsWith('>')) return { ok: false, reason: `${g.file} did not unpack to FASTA` };
      const records = parseFasta(text).map((r) => ({ name: (r.name.match(/(?:ref\|)?([A-Z]{1,2}_?\d+\.\d+)/)?.[1] ?? r.name).replace(/[.|]/g, '_'), seq: r.seq }));
      texts.push(toFasta(records));
    }
    writeFileSync(cached, texts.join(''));
  }
  return { ok: true, value: parseFasta(readFileSync(cached, 'utf8')) };
}

/**
 * A BLAST database of about `mbp` million bases of real sequence: lambda,
 * then the bacterial genomes, then dm3 upstream sequences in file order,
 * the last record cut so that the total is `mbp` (at most all of them,
 * 80.2 Mbp).
 */
export function blastDatabase(mbp: number): Prepared<FastaRecord[]> {
  const data = obtainBlastData();
  if (!data.ok) return data;
  const genomes = obtainGenomes();
  if (!genomes.ok) return genomes;
  const target = Math.round(mbp * 1e6);
  const out: FastaRecord[] = [];
  let total = 0;
  for (const r of [data.value.lambda, ...genomes.value, ...data.value.dm3]) {
    if (total >= target) break;
    const seq = r.seq.length > target - total ? r.seq.slice(0, target - total) : r.seq;
    out.push({ name: r.name, seq });
    total += seq.length;
  }
  return { ok: true, value: out };
}

function findFile(dir: string, name: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    } else if (e.name === name) return p;
  }
  return undefined;
}

/** makeblastdb and blastn on the PATH, installing ncbi-blast+ with apt as root when missing. */
export function ensureNcbiBlast(): Prepared<string> {
  if (has('makeblastdb') && has('blastn')) return { ok: true, value: version() };
  if (!isRoot() || !has('apt-get')) return { ok: false, reason: 'NCBI BLAST+ (makeblastdb, blastn) is missing and cannot be installed without root on Debian' };
  let r = run('apt-get', ['install', '-y', '-qq', 'ncbi-blast+']);
  if (r.status !== 0) {
    run('apt-get', ['update']);
    r = run('apt-get', ['install', '-y', '-qq', 'ncbi-blast+']);
  }
  if (r.status !== 0 || !has('blastn')) return { ok: false, reason: `apt-get install ncbi-blast+ failed: ${r.stderr.trim().slice(0, 300)}` };
  return { ok: true, value: version() };
}

function version(): string {
  return run('blastn', ['-version']).stdout.split('\n')[0]?.trim() ?? 'blastn';
}

/**
 * Runs makeblastdb (untimed: it is NCBI's init) and then
 * `blastn -task blastn -outfmt 6 -evalue 10 -num_threads <threads>`;
 * answers the tabular text and how long blastn took. `dir` holds the files:
 * suites that may run at the same time each name their own.
 */
export function runNcbiBlastn(dbFasta: string, queryFasta: string, threads = 4, dir = join(BLAST_DATA_DIR, 'ncbi')): { tabular: string; ms: number } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'db.fa'), dbFasta);
  writeFileSync(join(dir, 'queries.fa'), queryFasta);
  let r = run('makeblastdb', ['-in', 'db.fa', '-dbtype', 'nucl', '-out', 'db'], dir);
  if (r.status !== 0) throw new Error(`makeblastdb failed: ${r.stderr}`);
  const started = performance.now();
  r = run('blastn', ['-task', 'blastn', '-db', 'db', '-query', 'queries.fa', '-outfmt', '6', '-evalue', '10', '-num_threads', String(threads)], dir);
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`blastn failed: ${r.stderr}`);
  return { tabular: r.stdout, ms };
}

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
export const revcomp = (s: string) => [...s].reverse().map((c) => COMP[c] ?? 'N').join('');

export interface QuerySource { name: string; subject?: string; strand?: 'plus' | 'minus'; start?: number; end?: number }

/**
 * Queries: `n` substrings (200-800 bp) of database sequences, on either
 * strand, with about 2-6% substitutions and a few 1-3 bp insertions and
 * deletions; then `random` random sequences of 300 bp. A quarter come from
 * the first record (lambda); the others from a record picked uniformly
 * (`pick: 'record'`, the test's) or weighted by its length (`'base'`: every
 * base as likely, for a database of a few long genomes and many short
 * sequences).
 */
export function makeQueries(db: FastaRecord[], n: number, random: number, seed = 1, pick: 'record' | 'base' = 'record'): { fasta: string; sources: QuerySource[] } {
  const next = seededRandom(seed);
  const ends: number[] = [];
  for (const r of db) ends.push((ends.at(-1) ?? 0) + r.seq.length);
  const byBase = () => {
    const at = Math.floor(next() * ends.at(-1)!);
    let lo = 0, hi = ends.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (ends[mid]! > at) hi = mid; else lo = mid + 1; }
    return db[lo]!;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const base = () => 'ACGT'[int(0, 3)]!;
  const records: FastaRecord[] = [];
  const sources: QuerySource[] = [];
  for (let k = 0; k < n; k++) {
    // A quarter of the queries from lambda (the first record), the rest from anywhere.
    const subject = k % 4 === 0 ? db[0]! : pick === 'base' ? byBase() : db[int(0, db.length - 1)]!;
    const len = Math.min(int(200, 800), subject.seq.length);
    const start = int(0, subject.seq.length - len);
    const piece = subject.seq.slice(start, start + len);
    if ((piece.match(/N/g)?.length ?? 0) > len / 10) { k--; continue; }
    const subRate = 0.02 + next() * 0.04;
    let mutated = '';
    for (let i = 0; i < piece.length; i++) {
      const r = next();
      if (r < subRate) mutated += 'ACGT'.replace(piece[i]!, '')[int(0, 2)] ?? base();
      else if (r < subRate + 0.003) { /* deletion of 1-3 */ i += int(0, 2); }
      else if (r < subRate + 0.006) mutated += piece[i]! + Array.from({ length: int(1, 3) }, base).join('');
      else mutated += piece[i]!;
    }
    const strand = next() < 0.5 ? 'plus' : 'minus';
    const name = `q${String(k + 1).padStart(3, '0')}`;
    records.push({ name, seq: strand === 'plus' ? mutated : revcomp(mutated) });
    sources.push({ name, subject: subject.name, strand, start: start + 1, end: start + len });
  }
  for (let k = 0; k < random; k++) {
    const name = `r${String(k + 1).padStart(3, '0')}`;
    records.push({ name, seq: Array.from({ length: 300 }, base).join('') });
    sources.push({ name });
  }
  return { fasta: toFasta(records), sources };
}

/** One line of -outfmt 6. */
export interface TabularHit {
  qseqid: string; sseqid: string; pident: number; length: number; mismatch: number; gapopen: number;
  qstart: number; qend: number; sstart: number; send: number; evalue: number; bitscore: number;
}

export function parseTabular(text: string): TabularHit[] {
  return text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => {
    const f = l.split('\t');
    const num = (i: number) => Number(f[i]);
    return {
      qseqid: f[0]!, sseqid: f[1]!, pident: num(2), length: num(3), mismatch: num(4), gapopen: num(5),
      qstart: num(6), qend: num(7), sstart: num(8), send: num(9), evalue: num(10), bitscore: num(11),
    };
  });
}

/** The assimp test models (Debian's assimp-testmodels, BSD-3-clause), extracted from the .deb into test/.data/assimp, never installed. */
export const ASSIMP_DATA_DIR = join(repoRoot, 'test', '.data', 'assimp');
export const WUSON_OBJ = 'usr/share/assimp/models/OBJ/WusonOBJ.obj';
export const WUSON_PLY = 'usr/share/assimp/models/PLY/Wuson.ply';

/** The folder the assimp models are under (downloaded once), or why they cannot be had. */
export function assimpModels(): { dir: string } | { reason: string } {
  if (existsSync(join(ASSIMP_DATA_DIR, WUSON_OBJ))) return { dir: ASSIMP_DATA_DIR };
  if (existsSync(join('/', WUSON_OBJ))) return { dir: '/' };
  mkdirSync(ASSIMP_DATA_DIR, { recursive: true });
  const dl = spawnSync('apt-get', ['download', 'assimp-testmodels'], { cwd: ASSIMP_DATA_DIR, encoding: 'utf8', timeout: 60_000 });
  const deb = readdirSync(ASSIMP_DATA_DIR).find((f) => f.startsWith('assimp-testmodels') && f.endsWith('.deb'));
  if (!deb) return { reason: `apt-get download assimp-testmodels failed: ${(dl.stderr || dl.error?.message || '').trim().split('\n').pop()}` };
  const x = spawnSync('dpkg-deb', ['-x', deb, '.'], { cwd: ASSIMP_DATA_DIR, encoding: 'utf8' });
  if (x.status !== 0 || !existsSync(join(ASSIMP_DATA_DIR, WUSON_OBJ))) return { reason: `dpkg-deb -x ${deb} failed: ${x.stderr || x.error?.message}` };
  return { dir: ASSIMP_DATA_DIR };
}
