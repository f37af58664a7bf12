/*
 * blast: BLASTN (task blastn) as a Flurry fork-join guest.
 *
 *   init      the init input is a nucleotide database in FASTA; it is parsed
 *             (one byte per base: A C G T = 0..3, anything else 4) and indexed
 *             by every 11-mer (word size 11). The parent is then snapshotted,
 *             so every clone starts with the database and its index.
 *   run       the clone input is the job's whole query set (FASTA), the same
 *             for every clone; clone i of n searches its share: the queries
 *             are dealt by their estimated work (share_queries), so every
 *             clone gets about the same work, not the same count. For each
 *             query and both strands: exact 11-mer word hits, ungapped X-drop
 *             extension; then, as blastn, each subject's ungapped hits best
 *             first: a preliminary gapped X-drop extension with affine gaps,
 *             the survivors best first again to the final extension with
 *             traceback, each stage skipping what a better alignment already
 *             contains; Karlin-Altschul E-values over the effective search
 *             space. Output: NCBI -outfmt 6 lines (qseqid sseqid
 *             pident length mismatch gapopen qstart qend sstart send evalue
 *             bitscore), each query's under a "# query <k>" line.
 *   run_task  a job with `tasks: T` instead: the host calls run_task(t, T)
 *             for each task a clone takes, in one instance; the queries are
 *             dealt to the T tasks as to clones (per query when T >= the
 *             query count, largest estimated work first), and a task's output
 *             is its queries' lines, framed as a clone's.
 *   reduce    puts the clones' (or tasks') queries back in input order and
 *             drops the "#" lines: the table of a single instance, byte for
 *             byte.
 *
 * Scoring as blastn -task blastn: reward 2, penalty -3, gap open 5, gap
 * extend 2 (a gap of k costs 5 + 2k); X-drops 20 bits (ungapped), 100 bits
 * (gapped, the final traceback value); gap trigger 27 bits; E <= 10.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flurry.h"
#include "dust.h"
#include "inflate.h"

#define WORD 11
#define WORD_MASK ((1u << (2 * WORD)) - 1)
#define NWORDS (1u << (2 * WORD))
#define REWARD 2
#define PENALTY (-3)
#define GAP_OPEN 5
#define GAP_EXTEND 2
#define EVALUE_MAX 10.0
#define NEG (-1000000000)
#define LN2 0.69314718055994530942

/* Karlin-Altschul parameters for reward 2 / penalty -3. Gapped (5, 2): NCBI
 * blast_stat.c, blastn_values_2_3. Ungapped: computed by BLAST+ for these
 * scores with uniform base frequencies (blastn prints 0.634 0.408), used for
 * the ungapped X-drop and the gap trigger. */
static const double UNGAP_LAMBDA = 0.634, UNGAP_K = 0.408;
static const double GAP_LAMBDA = 0.625, GAP_K = 0.41, GAP_ALPHA = 0.8, GAP_BETA = -2.0; /* (H 0.78) */

/* ---- the database (warm state) ---- */
static unsigned char *db;      /* all sequences, a separator (4) after each */
static uint32_t db_size;       /* bytes in db */
static uint32_t nseq;
static uint32_t *seq_start;    /* offset of each sequence in db */
static uint32_t *seq_len;
static char **seq_name;
static uint64_t db_len;        /* total residues */
static uint32_t max_seq_len;
static uint32_t *word_first;   /* NWORDS + 1 offsets into word_pos */
static uint32_t *word_pos;     /* db offsets of each 11-mer's start */

/* Residue codes: A C G T = 0..3; 4 separates database sequences; an IUPAC
 * ambiguity code is 16 + its 4-bit base mask (A 1, C 2, G 4, T 8). */
static unsigned char code_of[256];
static signed char amb_score[32][32];
static int x_ungapped, x_prelim, x_gapped, gap_trigger;
static int e_cutoff; /* the lowest score with E <= 10, for this query */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "blast: out of memory (%zu bytes)\n", n); fflush(stderr); abort(); }
    return p;
}
static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) { fprintf(stderr, "blast: out of memory (%zu bytes)\n", n); fflush(stderr); abort(); }
    return p;
}

static unsigned char *read_input(int32_t *size_out) {
    int32_t size = flurry_input_size();
    unsigned char *buf = xmalloc((size_t)size + 1);
    int32_t done = 0;
    while (done < size) {
        int32_t n = flurry_input_read(buf + done, size - done, done);
        if (n <= 0) break;
        done += n;
    }
    buf[done] = 0;
    *size_out = done;
    return buf;
}

/* ---- FASTA ---- */
struct fasta_rec { char *name; unsigned char *seq; uint32_t len; };

/* Parses FASTA in place-ish: names are the first word after '>'; residues are
 * encoded with code_of. Returns the number of records. */
static uint32_t parse_fasta(unsigned char *text, int32_t size, struct fasta_rec **out) {
    uint32_t n = 0, cap = 64;
    struct fasta_rec *recs = xmalloc(cap * sizeof *recs);
    int32_t i = 0;
    while (i < size) {
        while (i < size && text[i] != '>') i++;
        if (i >= size) break;
        i++;
        int32_t ns = i;
        while (i < size && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') i++;
        int32_t ne = i;
        while (i < size && text[i] != '\n') i++;
        if (n == cap) { cap *= 2; recs = xrealloc(recs, cap * sizeof *recs); }
        char *name = xmalloc((size_t)(ne - ns) + 1);
        memcpy(name, text + ns, (size_t)(ne - ns));
        name[ne - ns] = 0;
        /* Residues are written over the text itself (never ahead of the read). */
        unsigned char *seq = text + i;
        uint32_t len = 0;
        while (i < size && text[i] != '>') {
            unsigned char c = text[i++];
            if (c == '\n' || c == '\r' || c == ' ' || c == '\t' || c == '-' || c == '*') continue;
            seq[len++] = code_of[c];
        }
        recs[n].name = name;
        recs[n].seq = seq;
        recs[n].len = len;
        n++;
    }
    *out = recs;
    return n;
}

static void init_tables(void) {
    static const char *iupac = "ACGTUMRWSYKVHDBN";
    static const unsigned char masks[] = {1, 2, 4, 8, 8, 3, 5, 9, 6, 10, 12, 7, 11, 13, 14, 15};
    memset(code_of, 16 + 15, sizeof code_of); /* anything else: N */
    for (int k = 0; iupac[k]; k++) {
        unsigned char m = masks[k];
        unsigned char c = m == 1 ? 0 : m == 2 ? 1 : m == 4 ? 2 : m == 8 ? 3 : (unsigned char)(16 + m);
        code_of[(unsigned char)iupac[k]] = code_of[(unsigned char)(iupac[k] + 32)] = c;
    }
    /* As NCBI's blastn matrix: a base against an ambiguity code that can be it
     * scores the average over the code's bases, rounded (N: -7/4 -> -2);
     * otherwise the penalty. */
    for (int a = 0; a < 32; a++) {
        for (int b = 0; b < 32; b++) {
            int ma = a < 4 ? 1 << a : a >= 16 ? a - 16 : 0, mb = b < 4 ? 1 << b : b >= 16 ? b - 16 : 0;
            int da = __builtin_popcount((unsigned)ma), db_ = __builtin_popcount((unsigned)mb);
            int d = da > db_ ? da : db_;
            if ((ma & mb) == 0 || d == 0) { amb_score[a][b] = PENALTY; continue; }
            double v = (double)((d - 1) * PENALTY + REWARD) / d;
            amb_score[a][b] = (signed char)(v >= 0 ? (int)(v + 0.5) : (int)(v - 0.5));
        }
    }
    /* NCBI converts bits to raw scores with the matching lambda. */
    x_ungapped = (int)ceil(20.0 * LN2 / UNGAP_LAMBDA);
    x_prelim = (int)(30.0 * LN2 / GAP_LAMBDA);
    x_gapped = (int)(100.0 * LN2 / GAP_LAMBDA);
    gap_trigger = (int)((27.0 * LN2 + log(UNGAP_K)) / UNGAP_LAMBDA);
}

FLURRY_EXPORT("init") void init(void) {
    double t0 = flurry_monotonic_ms();
    init_tables();
    int32_t size;
    unsigned char *text = read_input(&size);
    if (is_gzip(text, (size_t)size)) {
        size_t n;
        unsigned char *plain = gunzip(text, (size_t)size, &n);
        if (!plain || n > 0x7fffffff) {
            fprintf(stderr, "blast: init input is not valid gzip\n");
            fflush(stderr);
            abort();
        }
        memset(text, 0, (size_t)size); /* freed memory left zero stays out of the snapshot's pages */
        free(text);
        text = plain;
        size = (int32_t)n;
    }
    struct fasta_rec *recs;
    nseq = parse_fasta(text, size, &recs);
    seq_start = xmalloc((nseq + 1) * sizeof *seq_start);
    seq_len = xmalloc((nseq + 1) * sizeof *seq_len);
    seq_name = xmalloc((nseq + 1) * sizeof *seq_name);
    db_size = 1;
    for (uint32_t k = 0; k < nseq; k++) db_size += recs[k].len + 1;
    db = xmalloc(db_size);
    uint32_t at = 0;
    db[at++] = 4;
    db_len = 0;
    max_seq_len = 0;
    for (uint32_t k = 0; k < nseq; k++) {
        seq_start[k] = at;
        seq_len[k] = recs[k].len;
        seq_name[k] = recs[k].name;
        memcpy(db + at, recs[k].seq, recs[k].len);
        at += recs[k].len;
        db[at++] = 4;
        db_len += recs[k].len;
        if (recs[k].len > max_seq_len) max_seq_len = recs[k].len;
    }
    seq_start[nseq] = at;
    memset(text, 0, (size_t)size);
    free(text);
    free(recs);

    /* The word index: counting sort of every valid 11-mer start. */
    word_first = calloc(NWORDS + 1, sizeof *word_first);
    if (!word_first) abort();
    uint32_t w = 0, valid = 0, total = 0;
    for (uint32_t p = 0; p < db_size; p++) {
        unsigned char c = db[p];
        if (c > 3) { valid = 0; continue; }
        w = ((w << 2) | c) & WORD_MASK;
        if (++valid >= WORD) { word_first[w + 1]++; total++; }
    }
    for (uint32_t k = 0; k < NWORDS; k++) word_first[k + 1] += word_first[k];
    word_pos = xmalloc((size_t)total * sizeof *word_pos);
    uint32_t *fill = xmalloc((size_t)NWORDS * sizeof *fill);
    memcpy(fill, word_first, (size_t)NWORDS * sizeof *fill);
    valid = 0;
    for (uint32_t p = 0; p < db_size; p++) {
        unsigned char c = db[p];
        if (c > 3) { valid = 0; continue; }
        w = ((w << 2) | c) & WORD_MASK;
        if (++valid >= WORD) word_pos[fill[w]++] = p + 1 - WORD;
    }
    memset(fill, 0, (size_t)NWORDS * sizeof *fill);
    free(fill);
    printf("blast: init %u sequences, %llu residues, %u words indexed in %.0f ms\n", nseq,
           (unsigned long long)db_len, total, flurry_monotonic_ms() - t0);
    fflush(stdout);
}

/* ---- output buffer ---- */
static char *out_buf;
static size_t out_len, out_cap;
static void out_append(const char *s, size_t n) {
    if (out_len + n > out_cap) {
        while (out_len + n > out_cap) out_cap = out_cap ? out_cap * 2 : 65536;
        out_buf = xrealloc(out_buf, out_cap);
    }
    memcpy(out_buf + out_len, s, n);
    out_len += n;
}

/* ---- statistics ---- */

/* NCBI's BLAST_ComputeLengthAdjustment. */
static int length_adjustment(double K, double logK, double alpha_d_lambda, double beta, double m, double n,
                             double N) {
    double ell_min = 0, ell_max, ell_next = 0, ell = 0;
    int converged = 0;
    double a = N, mb = m * N + n, c = n * m - (m > n ? m : n) / K;
    if (c < 0) return 0;
    ell_max = 2 * c / (mb + sqrt(mb * mb - 4 * a * c));
    for (int i = 1; i <= 20; i++) {
        ell = ell_next;
        double ss = (m - ell) * (n - N * ell);
        double ell_bar = alpha_d_lambda * (logK + log(ss)) + beta;
        if (ell_bar >= ell) {
            ell_min = ell;
            if (ell_bar - ell_min <= 1.0) { converged = 1; break; }
            if (ell_min == ell_max) break;
        } else {
            ell_max = ell;
        }
        if (ell_min <= ell_bar && ell_bar <= ell_max) ell_next = ell_bar;
        else ell_next = (i == 1) ? ell_max : (ell_min + ell_max) / 2;
    }
    int adj = (int)ell_min;
    if (converged) {
        ell = ceil(ell_min);
        if (ell <= ell_max) {
            double ss = (m - ell) * (n - N * ell);
            if (alpha_d_lambda * (logK + log(ss)) + beta >= ell) adj = (int)ell;
        }
    }
    return adj;
}

/* ---- alignment ---- */
struct hsp {
    uint32_t subject;       /* sequence index */
    int strand;             /* 0 plus, 1 minus (query reverse-complemented) */
    int score;
    int qs, qe, ss, se;     /* 0-based inclusive, in the searched query strand and subject */
    int length, ident, mism, gapopen;
};

static inline int pair_score(unsigned char a, unsigned char b) {
    if ((a | b) < 4) return a == b ? REWARD : PENALTY;
    return amb_score[a & 31][b & 31];
}

/* Traceback storage for the gapped X-drop DP. */
static unsigned char *tb;
static size_t tb_cap;
static size_t *row_off;
static int *row_lo, *row_hi;
static size_t row_cap;
static int *Hc, *Hp, *Fc, *Fp;
static size_t col_cap;
static char *ops;
static size_t ops_cap;

static void ensure_cols(size_t n) {
    if (n <= col_cap) return;
    col_cap = n * 2;
    Hc = xrealloc(Hc, col_cap * sizeof *Hc);
    Hp = xrealloc(Hp, col_cap * sizeof *Hp);
    Fc = xrealloc(Fc, col_cap * sizeof *Fc);
    Fp = xrealloc(Fp, col_cap * sizeof *Fp);
}

/*
 * X-drop gapped extension of A[0..alen) against B[0..blen) from (0,0), affine
 * gaps. Returns the best score; *bi, *bj = residues of A and B used; the ops
 * (M, I = A residue against a gap, D = B residue against a gap) are written in
 * forward order to *ops_out (length returned in *nops).
 */
static int xdrop_align(const unsigned char *A, int alen, const unsigned char *B, int blen, int X, int *bi,
                       int *bj, char **ops_out, int *nops) {
    const int go = GAP_OPEN + GAP_EXTEND, ge = GAP_EXTEND;
    ensure_cols((size_t)blen + 2);
    if ((size_t)alen + 1 > row_cap) {
        row_cap = ((size_t)alen + 1) * 2;
        row_off = xrealloc(row_off, row_cap * sizeof *row_off);
        row_lo = xrealloc(row_lo, row_cap * sizeof *row_lo);
        row_hi = xrealloc(row_hi, row_cap * sizeof *row_hi);
    }
    size_t tb_len = 0;
    int best = 0, best_i = 0, best_j = 0;
    /* Row 0: a gap along B. */
    int lo = 0, hi = 0;
    Hp[0] = 0;
    Fp[0] = NEG;
    if (tb_cap < (size_t)blen + 1) { tb_cap = ((size_t)blen + 1) * 4; tb = xrealloc(tb, tb_cap); }
    tb[tb_len++] = 0;
    for (int j = 1; j <= blen; j++) {
        int h = -(GAP_OPEN + GAP_EXTEND * j);
        if (h < best - X) break;
        Hp[j] = h;
        Fp[j] = NEG;
        tb[tb_len++] = 1 | (j == 1 ? 4 : 0);
        hi = j;
    }
    row_off[0] = 0; row_lo[0] = lo; row_hi[0] = hi;
    int plo = lo, phi = hi;
    int last_row = 0;
    for (int i = 1; i <= alen; i++) {
        size_t need = tb_len + (size_t)(blen - plo) + 2;
        if (need > tb_cap) { tb_cap = need * 2; tb = xrealloc(tb, tb_cap); }
        row_off[i] = tb_len;
        int clo = -1;
        int e = NEG;          /* E at (i, j-1) */
        int hleft = NEG;      /* H at (i, j-1) */
        int first = 1;
        unsigned char a = A[i - 1];
        int j;
        for (j = plo; j <= blen; j++) {
            int hup = (j <= phi) ? Hp[j] : NEG;
            int fup = (j <= phi) ? Fp[j] : NEG;
            int hdiag = (j - 1 >= plo && j - 1 <= phi) ? Hp[j - 1] : NEG;
            unsigned char t = 0;
            /* F: vertical (consumes A). */
            int fo = hup == NEG ? NEG : hup - go, fe = fup == NEG ? NEG : fup - ge;
            int f;
            if (fo >= fe) { f = fo; t |= 8; } else f = fe;
            /* E: horizontal (consumes B). */
            int eo = hleft == NEG ? NEG : hleft - go, ee = e == NEG ? NEG : e - ge;
            int en;
            if (eo >= ee) { en = eo; t |= 4; } else en = ee;
            int d = (j >= 1 && hdiag != NEG) ? hdiag + pair_score(a, B[j - 1]) : NEG;
            int h = d;
            if (en > h) { h = en; t = (unsigned char)((t & ~3) | 1); }
            if (f > h) { h = f; t = (unsigned char)((t & ~3) | 2); }
            if (h < best - X || h <= NEG / 2) {
                h = NEG;
                if (f < best - X) f = NEG;
                if (en < best - X) en = NEG;
            }
            if (h != NEG) {
                if (first) { clo = j; first = 0; }
                if (h > best) { best = h; best_i = i; best_j = j; }
            }
            Hc[j] = h;
            Fc[j] = f < best - X ? NEG : f;
            e = en < best - X ? NEG : en;
            hleft = h;
            tb[tb_len++] = t;
            /* Past the previous row's window only E (and the diagonal from phi) can live. */
            if (j > phi && h == NEG && e == NEG) { j++; break; }
        }
        if (clo < 0) break;
        /* Keep the row's stored window [plo, j-1] for traceback, but next row uses [clo, chi]. */
        row_lo[i] = plo;
        row_hi[i] = j - 1;
        last_row = i;
        int *sw = Hp; Hp = Hc; Hc = sw;
        sw = Fp; Fp = Fc; Fc = sw;
        /* Cells of Hp outside [clo, chi] are NEG already; F may live where H is dead, keep [plo..j-1]. */
        int nlo = clo, nhi = j - 1;
        /* F alive below clo? F lives only where H was computed; include those. */
        for (int k = plo; k < clo; k++) if (Fp[k] != NEG) { nlo = k; break; }
        plo = nlo; phi = nhi;
    }
    (void)last_row;
    /* Traceback from (best_i, best_j). */
    int i = best_i, j = best_j, state = 0, n = 0;
    size_t need = (size_t)best_i + (size_t)best_j + 1;
    if (need > ops_cap) { ops_cap = need * 2; ops = xrealloc(ops, ops_cap); }
    while (i > 0 || j > 0) {
        unsigned char t = tb[row_off[i] + (size_t)(j - row_lo[i])];
        if (state == 0) {
            int src = t & 3;
            if (src == 0) { ops[n++] = 'M'; i--; j--; continue; }
            state = src;
            continue;
        }
        if (state == 1) { ops[n++] = 'D'; if (t & 4) state = 0; j--; continue; }
        ops[n++] = 'I';
        if (t & 8) state = 0;
        i--;
    }
    for (int a = 0, b = n - 1; a < b; a++, b--) { char c = ops[a]; ops[a] = ops[b]; ops[b] = c; }
    *bi = best_i;
    *bj = best_j;
    *ops_out = ops;
    *nops = n;
    return best;
}

/* HSPs of the current query. */
static struct hsp *hsps;
static size_t n_hsps, hsps_cap;

static unsigned char *revbuf_a, *revbuf_b;
static size_t revcap_a, revcap_b;
static char *left_ops;
static size_t left_cap;

/* Gapped extension through (q0, s0) (db offset), within subject k, with
 * X-drop X: 30 bits for blastn's preliminary stage, 100 bits for the final
 * one (extend_seeds); the alignment is appended to hsps. */
static void gapped_x(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand, int X);

/* Bounds of the extension (query positions, db offsets; inclusive). */
static int lim_q_lo = 0, lim_q_hi = 0x7fffffff;
static uint32_t lim_s_lo = 0, lim_s_hi = 0xffffffffu;

/* The final extension (X-drop 100 bits, traceback) through (q0, s0). */
static void gapped(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand) {
    size_t before = n_hsps;
    gapped_x(q, qlen, k, s0, q0, strand, x_gapped);
    if (n_hsps == before) return;
    /* The final X-drop can run into a better alignment found before and end
     * where it starts or ends; then, as blastn, keep only the part beside it:
     * extend again, bounded by that alignment. */
    struct hsp h = hsps[n_hsps - 1];
    uint32_t sb = seq_start[k];
    for (size_t t = 0; t + 1 < n_hsps; t++) {
        struct hsp *o = &hsps[t];
        if (o->subject != k || o->strand != strand || o->score < h.score) continue;
        int same_start = o->qs == h.qs && o->ss == h.ss, same_end = o->qe == h.qe && o->se == h.se;
        if (!same_start && !same_end) continue;
        n_hsps--;
        int sq = (int)(s0 - sb);
        if (same_start && q0 > o->qe && sq > o->se) { lim_q_lo = o->qe + 1; lim_s_lo = sb + (uint32_t)o->se + 1; }
        else if (same_end && q0 < o->qs && sq < o->ss) { lim_q_hi = o->qs - 1; lim_s_hi = sb + (uint32_t)o->ss - 1; }
        else return;
        gapped_x(q, qlen, k, s0, q0, strand, x_gapped);
        lim_q_lo = 0; lim_q_hi = 0x7fffffff; lim_s_lo = 0; lim_s_hi = 0xffffffffu;
        return;
    }
}

static void gapped_x(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand, int X) {
    uint32_t sb = seq_start[k], se = seq_start[k] + seq_len[k];
    uint32_t lo_s = sb > lim_s_lo ? sb : lim_s_lo, hi_s = lim_s_hi < se ? lim_s_hi + 1 : se;
    int lo_q = lim_q_lo, hi_q = lim_q_hi < qlen ? lim_q_hi + 1 : qlen;
    if (q0 < lo_q || q0 > hi_q || s0 < lo_s || s0 > hi_s) return;
    /* Left: reversed prefixes. */
    int alen = q0 - lo_q;
    int blen = (int)(s0 - lo_s);
    if (blen > alen + X) blen = alen + X;
    if ((size_t)alen + 1 > revcap_a) { revcap_a = ((size_t)alen + 1) * 2; revbuf_a = xrealloc(revbuf_a, revcap_a); }
    if ((size_t)blen + 1 > revcap_b) { revcap_b = ((size_t)blen + 1) * 2; revbuf_b = xrealloc(revbuf_b, revcap_b); }
    for (int t = 0; t < alen; t++) revbuf_a[t] = q[q0 - 1 - t];
    for (int t = 0; t < blen; t++) revbuf_b[t] = db[s0 - 1 - t];
    int li, lj, ln;
    char *lops;
    int lscore = xdrop_align(revbuf_a, alen, revbuf_b, blen, X, &li, &lj, &lops, &ln);
    if ((size_t)ln + 1 > left_cap) { left_cap = ((size_t)ln + 1) * 2; left_ops = xrealloc(left_ops, left_cap); }
    for (int t = 0; t < ln; t++) left_ops[t] = lops[ln - 1 - t];
    /* Right. */
    alen = hi_q - q0;
    blen = (int)(hi_s - s0);
    if (blen > alen + X) blen = alen + X;
    int ri, rj, rn;
    char *rops;
    int rscore = xdrop_align(q + q0, alen, db + s0, blen, X, &ri, &rj, &rops, &rn);
    struct hsp h;
    h.subject = k;
    h.strand = strand;
    h.score = lscore + rscore;
    h.qs = q0 - li;
    h.qe = q0 + ri - 1;
    h.ss = (int)(s0 - lj - sb);
    h.se = (int)(s0 + rj - 1 - sb);
    if (h.qe < h.qs || h.se < h.ss) return;
    /* Counts along the ops. */
    int qi = h.qs, sj = (int)(s0 - lj);
    h.length = ln + rn;
    h.ident = h.mism = h.gapopen = 0;
    char prev = 'M';
    for (int t = 0; t < ln + rn; t++) {
        char o = t < ln ? left_ops[t] : rops[t - ln];
        if (o == 'M') {
            if (q[qi] == db[sj] && q[qi] < 4) h.ident++; else h.mism++;
            qi++; sj++;
        } else if (o == 'I') {
            if (prev != 'I') h.gapopen++;
            qi++;
        } else {
            if (prev != 'D') h.gapopen++;
            sj++;
        }
        prev = o;
    }
    if (n_hsps == hsps_cap) { hsps_cap = hsps_cap ? hsps_cap * 2 : 64; hsps = xrealloc(hsps, hsps_cap * sizeof *hsps); }
    hsps[n_hsps++] = h;
}

static uint32_t subject_of(uint32_t p) {
    uint32_t lo = 0, hi = nseq; /* seq_start[lo] <= p < seq_start[hi] */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (seq_start[mid] <= p) lo = mid; else hi = mid;
    }
    return lo;
}

/* How far an ungapped extension already reached on each diagonal of the
 * current query strand (db offset + 1; 0: none). An open-addressing table
 * keyed by diagonal + 1, sized to at least twice the strand's word hits, so
 * it never fills, and a clone needs no array as long as the database. */
static uint32_t *diag_key, *diag_val;
static size_t diag_cap, diag_mask;

/* Exact hits of the query's unmasked words in the database. */
static uint64_t word_hits(const unsigned char *q, const unsigned char *masked, int qlen) {
    uint64_t hits = 0;
    uint32_t w = 0;
    int valid = 0;
    for (int i = 0; i < qlen; i++) {
        unsigned char c = q[i];
        if (c > 3 || masked[i]) { valid = 0; continue; }
        w = ((w << 2) | c) & WORD_MASK;
        if (++valid >= WORD) hits += word_first[w + 1] - word_first[w];
    }
    return hits;
}

static void diag_reset(uint64_t hits) {
    size_t cap = 64;
    while (cap < 2 * hits + 2) cap <<= 1;
    if (cap > diag_cap) {
        diag_cap = cap;
        diag_key = xrealloc(diag_key, cap * sizeof *diag_key);
        diag_val = xrealloc(diag_val, cap * sizeof *diag_val);
    }
    diag_mask = cap - 1;
    memset(diag_key, 0, cap * sizeof *diag_key);
}

/* The slot of `diag`: its own, or the empty one where it would go. */
static inline size_t diag_slot(uint32_t diag) {
    uint32_t key = diag + 1;
    size_t i = (size_t)(key * 2654435761u) & diag_mask;
    while (diag_key[i] != 0 && diag_key[i] != key) i = (i + 1) & diag_mask;
    return i;
}

/* Ungapped extensions that reached the gap trigger, for both strands of the
 * current query. As blastn, they are extended gapped only after the word
 * search, each subject's best first (see extend_seeds). */
struct seed {
    uint32_t subject;
    int strand;
    int score;              /* ungapped */
    int qs, qe, ss;         /* the ungapped segment: query start and end, subject start (0-based, inclusive) */
    int q0;                 /* seed point: query position, */
    uint32_t s0;            /* and db offset */
};
static struct seed *seeds;
static size_t n_seeds, seeds_cap;

static int trigger; /* the ungapped score that starts a gapped extension, for this query */
static int dust_level = 20;

static void search_strand(const unsigned char *q, const unsigned char *masked, int qlen, int strand) {
    if (qlen < WORD) return;
    diag_reset(word_hits(q, masked, qlen));
    uint32_t w = 0;
    int valid = 0;
    for (int i = 0; i < qlen; i++) {
        unsigned char c = q[i];
        if (c > 3 || masked[i]) { valid = 0; continue; } /* no word over Ns or DUST */
        w = ((w << 2) | c) & WORD_MASK;
        if (++valid < WORD) continue;
        int qi = i + 1 - WORD; /* word start in the query */
        for (uint32_t h = word_first[w]; h < word_first[w + 1]; h++) {
            uint32_t p = word_pos[h];
            uint32_t diag = p + (uint32_t)qlen - (uint32_t)qi;
            size_t slot = diag_slot(diag);
            if (diag_key[slot] != 0 && diag_val[slot] > p + 1) continue; /* inside an extension already done */
            uint32_t k = subject_of(p);
            uint32_t sb = seq_start[k], se = sb + seq_len[k];
            /* Ungapped X-drop extension of the word both ways. */
            int score = WORD * REWARD, best = score;
            int bl = 0, br = 0; /* residues added left / right at the best */
            int run = 0;
            for (int t = 1; qi - t >= 0 && p - (uint32_t)t >= sb; t++) {
                run += pair_score(q[qi - t], db[p - (uint32_t)t]);
                if (run > 0) { best += run; bl = t; run = 0; }
                else if (run < -x_ungapped) break;
            }
            run = 0;
            int rb = best;
            int tmax = 0;
            for (int t = 0; qi + WORD + t < qlen && p + WORD + (uint32_t)t < se; t++) {
                run += pair_score(q[qi + WORD + t], db[p + WORD + (uint32_t)t]);
                tmax = t + 1;
                if (run > 0) { rb += run; br = t + 1; run = 0; }
                else if (run < -x_ungapped) break;
            }
            best = rb;
            uint32_t mark = p + WORD + (uint32_t)tmax;
            if (diag_key[slot] == 0) { diag_key[slot] = diag + 1; diag_val[slot] = 0; }
            if (mark + 1 > diag_val[slot]) diag_val[slot] = mark + 1;
            if (best < trigger) continue;
            if (n_seeds == seeds_cap) { seeds_cap = seeds_cap ? seeds_cap * 2 : 256; seeds = xrealloc(seeds, seeds_cap * sizeof *seeds); }
            struct seed *sd = &seeds[n_seeds++];
            sd->subject = k;
            sd->strand = strand;
            sd->score = best;
            sd->qs = qi - bl;
            sd->qe = qi + WORD - 1 + br;
            sd->ss = (int)(p - sb) - bl;
            /* The seed point: the middle of the word. */
            sd->q0 = qi + WORD / 2;
            sd->s0 = p + WORD / 2;
        }
    }
}

/* Seeds in the order blastn extends them: by subject, then the best
 * ungapped score first (ties: strand, subject offset, query position). */
static int cmp_seed(const void *a, const void *b) {
    const struct seed *x = a, *y = b;
    if (x->subject != y->subject) return x->subject < y->subject ? -1 : 1;
    if (x->score != y->score) return y->score - x->score;
    if (x->strand != y->strand) return x->strand - y->strand;
    if (x->s0 != y->s0) return x->s0 < y->s0 ? -1 : 1;
    return x->q0 - y->q0;
}

/* blastn's min_diag_separation: an alignment covers another's region only
 * on diagonals this close to its own start or end. */
#define MIN_DIAG_SEPARATION 50

/* NCBI's containment test (s_HSPIsContained): a segment from (qs, ss) to
 * (qe, se) of score `score` adds nothing to alignment o when o scores at
 * least as much, holds both its ends, and starts or ends on a diagonal near
 * its own. A better alignment inside o's region is not contained. */
static int contained(const struct hsp *o, int strand, int score, int qs, int qe, int ss, int se) {
    if (o->strand != strand || score > o->score) return 0;
    if (qs < o->qs || qs > o->qe || ss < o->ss || ss > o->se) return 0;
    if (qe < o->qs || qe > o->qe || se < o->ss || se > o->se) return 0;
    return abs((o->ss - o->qs) - (ss - qs)) < MIN_DIAG_SEPARATION || abs((o->se - o->qe) - (se - qe)) < MIN_DIAG_SEPARATION;
}

/* Preliminary alignments of the current query (score only, X-drop 30 bits)
 * with the seed point each was extended from. */
struct prelim { struct hsp box; int q0; uint32_t s0; };
static struct prelim *prelims;
static size_t n_prelims, prelims_cap;

/* Preliminary alignments in the order blastn traces them back: by subject,
 * the best first (ties: strand, subject and query start). */
static int cmp_prelim(const void *a, const void *b) {
    const struct hsp *x = &((const struct prelim *)a)->box, *y = &((const struct prelim *)b)->box;
    if (x->subject != y->subject) return x->subject < y->subject ? -1 : 1;
    if (x->score != y->score) return y->score - x->score;
    if (x->strand != y->strand) return x->strand - y->strand;
    if (x->ss != y->ss) return x->ss - y->ss;
    return x->qs - y->qs;
}

/* Gapped extension of the seeds in blastn's two stages. Preliminary
 * (BLAST_GetGappedScore): each subject's seeds by ungapped score, best
 * first, skipping a seed that an alignment found before contains, and
 * keeping the alignments that reach E <= 10. Traceback: those alignments
 * by score, best first, skipping one that a final alignment contains,
 * extended again from their seed point with X-drop 100 bits. Extending in
 * word order instead lets a weak seed on a neighbouring diagonal of a
 * repeat claim the region first: its alignment, gapped across the repeat's
 * period, then hides the seeds of the exact one. */
static void extend_seeds(const unsigned char *q, const unsigned char *rc, int qlen) {
    qsort(seeds, n_seeds, sizeof *seeds, cmp_seed);
    n_prelims = 0;
    size_t first = 0;
    for (size_t a = 0; a < n_seeds; a++) {
        const struct seed *sd = &seeds[a];
        if (a > 0 && sd->subject != seeds[a - 1].subject) first = n_prelims;
        int inside = 0;
        for (size_t t = first; t < n_prelims && !inside; t++)
            inside = contained(&prelims[t].box, sd->strand, sd->score, sd->qs, sd->qe, sd->ss, sd->ss + (sd->qe - sd->qs));
        if (inside) continue;
        size_t before = n_hsps;
        gapped_x(sd->strand ? rc : q, qlen, sd->subject, sd->s0, sd->q0, sd->strand, x_prelim);
        if (n_hsps == before) continue;
        struct hsp h = hsps[--n_hsps];
        if (h.score < e_cutoff) continue;
        if (n_prelims == prelims_cap) { prelims_cap = prelims_cap ? prelims_cap * 2 : 64; prelims = xrealloc(prelims, prelims_cap * sizeof *prelims); }
        prelims[n_prelims].box = h;
        prelims[n_prelims].q0 = sd->q0;
        prelims[n_prelims].s0 = sd->s0;
        n_prelims++;
    }
    qsort(prelims, n_prelims, sizeof *prelims, cmp_prelim);
    first = n_hsps;
    for (size_t a = 0; a < n_prelims; a++) {
        const struct hsp *p = &prelims[a].box;
        if (a > 0 && p->subject != prelims[a - 1].box.subject) first = n_hsps;
        int inside = 0;
        for (size_t t = first; t < n_hsps && !inside; t++)
            inside = contained(&hsps[t], p->strand, p->score, p->qs, p->qe, p->ss, p->se);
        if (!inside) gapped(p->strand ? rc : q, qlen, p->subject, prelims[a].s0, prelims[a].q0, p->strand);
    }
}

static int cmp_hsp_score(const void *a, const void *b) {
    const struct hsp *x = a, *y = b;
    if (x->score != y->score) return y->score - x->score;
    /* Ties as blastn orders them: the later database sequence first, then by
     * subject offset. */
    if (x->subject != y->subject) return x->subject > y->subject ? -1 : 1;
    if (x->ss != y->ss) return x->ss - y->ss;
    return x->qs - y->qs;
}

static void format_evalue(char *buf, size_t cap, double e) {
    if (e < 1.0e-180) snprintf(buf, cap, "0.0");
    else if (e < 0.0009) snprintf(buf, cap, "%.2e", e);
    else if (e < 0.1) snprintf(buf, cap, "%4.3lf", e);
    else if (e < 1.0) snprintf(buf, cap, "%3.2lf", e);
    else if (e < 10.0) snprintf(buf, cap, "%2.1lf", e);
    else snprintf(buf, cap, "%2.0lf", e);
}

static void format_bits(char *buf, size_t cap, double b) {
    if (b > 99999) snprintf(buf, cap, "%5.3le", b);
    else if (b > 99.9) snprintf(buf, cap, "%d", (int)b);
    else snprintf(buf, cap, "%.1f", b);
}

static unsigned char complement(unsigned char c) {
    if (c < 4) return (unsigned char)(3 - c);
    unsigned m = c - 16u; /* A<->T, C<->G: reverse the 4 mask bits */
    return (unsigned char)(16 + (((m & 1) << 3) | ((m & 2) << 1) | ((m & 4) >> 1) | ((m & 8) >> 3)));
}

static void search_query(const char *name, const unsigned char *q, int qlen) {
    n_hsps = 0;
    /* Statistics. */
    double logK = log(GAP_K);
    int L = length_adjustment(GAP_K, logK, GAP_ALPHA / GAP_LAMBDA, GAP_BETA, (double)qlen, (double)db_len, (double)nseq);
    double m_eff = (double)qlen - L;
    if (m_eff < 1.0 / GAP_K) m_eff = 1.0 / GAP_K;
    double n_eff = (double)db_len - (double)nseq * L;
    double space = m_eff * n_eff;
    /* As NCBI: gapped extension starts at the 27-bit gap trigger, or lower when
     * a lower score already reaches E <= 10 (small databases). */
    e_cutoff = (int)ceil(log(GAP_K * space / EVALUE_MAX) / GAP_LAMBDA);
    trigger = gap_trigger < e_cutoff ? gap_trigger : e_cutoff;
    /* Low-complexity regions (DUST, as blastn's default -dust 20 64 1) seed no
     * words; alignments may still run through them. */
    unsigned char *masked = xmalloc((size_t)qlen + 1), *rmasked = xmalloc((size_t)qlen + 1);
    if (dust_level > 0) dust_mask(q, qlen, dust_level, 64, masked);
    else memset(masked, 0, (size_t)qlen);
    for (int i = 0; i < qlen; i++) rmasked[i] = masked[qlen - 1 - i];
    unsigned char *rc = xmalloc((size_t)qlen + 1);
    for (int i = 0; i < qlen; i++) rc[i] = complement(q[qlen - 1 - i]);
    n_seeds = 0;
    search_strand(q, masked, qlen, 0);
    search_strand(rc, rmasked, qlen, 1);
    extend_seeds(q, rc, qlen);
    free(rc);
    free(masked);
    free(rmasked);
    if (n_hsps == 0) return;
    qsort(hsps, n_hsps, sizeof *hsps, cmp_hsp_score);
    /* Drop HSPs sharing an end point with a better one, or contained in one
     * near its diagonals (as blastn's last containment check). */
    unsigned char *keep = xmalloc(n_hsps);
    for (size_t a = 0; a < n_hsps; a++) {
        keep[a] = 1;
        struct hsp *x = &hsps[a];
        for (size_t b = 0; b < a && keep[a]; b++) {
            if (!keep[b]) continue;
            struct hsp *y = &hsps[b];
            if (y->subject != x->subject || y->strand != x->strand) continue;
            if ((x->qs == y->qs && x->ss == y->ss) || (x->qe == y->qe && x->se == y->se)) keep[a] = 0;
            else if (contained(y, x->strand, x->score, x->qs, x->qe, x->ss, x->se)) keep[a] = 0;
        }
    }
    /* Order: subjects by their best HSP, then HSPs by score (hsps are sorted by score). */
    uint32_t *order_subj = xmalloc(n_hsps * sizeof *order_subj);
    size_t n_subj = 0;
    for (size_t a = 0; a < n_hsps; a++) {
        if (!keep[a]) continue;
        int seen = 0;
        for (size_t t = 0; t < n_subj; t++) if (order_subj[t] == hsps[a].subject) { seen = 1; break; }
        if (!seen) order_subj[n_subj++] = hsps[a].subject;
    }
    char line[1024], ebuf[32], bbuf[32];
    for (size_t t = 0; t < n_subj && t < 500; t++) {
        for (size_t a = 0; a < n_hsps; a++) {
            struct hsp *h = &hsps[a];
            if (!keep[a] || h->subject != order_subj[t]) continue;
            /* The 2/-3 parameters hold for even scores: E-values use the score
             * rounded down (as NCBI does); bit scores use the raw score. */
            int s = h->score & ~1;
            double e = GAP_K * space * exp(-GAP_LAMBDA * s);
            if (e > EVALUE_MAX) continue;
            double bits = (GAP_LAMBDA * h->score - logK) / LN2;
            int qs, qe, ss, se;
            if (h->strand == 0) { qs = h->qs + 1; qe = h->qe + 1; ss = h->ss + 1; se = h->se + 1; }
            else { qs = qlen - h->qe; qe = qlen - h->qs; ss = h->se + 1; se = h->ss + 1; }
            format_evalue(ebuf, sizeof ebuf, e);
            format_bits(bbuf, sizeof bbuf, bits);
            int n = snprintf(line, sizeof line, "%s\t%s\t%.3f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", name,
                             seq_name[h->subject], 100.0 * h->ident / h->length, h->length, h->mism, h->gapopen,
                             qs, qe, ss, se, ebuf, bbuf);
            if (n > 0) out_append(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        }
    }
    free(order_subj);
    free(keep);
}

/* ---- sharing the queries between clones or tasks ---- */

/* A query's expected search work: the database positions its words hit on
 * both strands (each is looked at, and most are extended a little: the bulk
 * of the search on a large database), plus its length (the per-query costs
 * that do not depend on hits: DUST, the strands, the diagonal marks). Gapped
 * extension of the few true hits is not foreseen; it grows with the length. */
#define WORK_PER_BASE 0.25
static double query_work(const unsigned char *q, int qlen, unsigned char *masked) {
    double hits = 0;
    if (dust_level > 0) dust_mask(q, qlen, dust_level, 64, masked);
    else memset(masked, 0, (size_t)qlen);
    uint32_t w = 0, rw = 0;
    int valid = 0;
    for (int i = 0; i < qlen; i++) {
        unsigned char c = q[i];
        if (c > 3 || masked[i]) { valid = 0; continue; }
        w = ((w << 2) | c) & WORD_MASK;
        rw = (rw >> 2) | ((uint32_t)(3 - c) << (2 * (WORD - 1))); /* the reverse complement's word */
        if (++valid < WORD) continue;
        hits += (double)(word_first[w + 1] - word_first[w]) + (double)(word_first[rw + 1] - word_first[rw]);
    }
    return hits + WORK_PER_BASE * 2.0 * qlen;
}

/* Deals the queries to `count` clones (or tasks): largest estimated work
 * first, each to the clone with the least work so far (ties: the lower query,
 * the lower clone). Every clone computes the same deal from the same input. */
static const double *sort_work;
static int cmp_work_desc(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (sort_work[x] != sort_work[y]) return sort_work[x] > sort_work[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* The part with the least work so far, the lower index on a tie: a binary
 * min-heap of (load, index), so that dealing to many tasks stays cheap. */
struct part_load { double load; int32_t index; };
static int part_less(const struct part_load *a, const struct part_load *b) {
    return a->load < b->load || (a->load == b->load && a->index < b->index);
}
static void part_sift_down(struct part_load *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && part_less(&h[l], &h[m])) m = l;
        if (r < n && part_less(&h[r], &h[m])) m = r;
        if (m == i) return;
        struct part_load t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int32_t *share_queries(struct fasta_rec *qs, uint32_t nq, int32_t count) {
    uint32_t maxq = 0;
    for (uint32_t k = 0; k < nq; k++) if (qs[k].len > maxq) maxq = qs[k].len;
    unsigned char *masked = xmalloc((size_t)maxq + 1);
    double *work = xmalloc(((size_t)nq + 1) * sizeof *work);
    uint32_t *order = xmalloc(((size_t)nq + 1) * sizeof *order);
    for (uint32_t k = 0; k < nq; k++) {
        work[k] = query_work(qs[k].seq, (int)qs[k].len, masked);
        order[k] = k;
    }
    sort_work = work;
    qsort(order, nq, sizeof *order, cmp_work_desc);
    int32_t *owner = xmalloc(((size_t)nq + 1) * sizeof *owner);
    /* Only the first min(count, nq) parts can receive a query. */
    int32_t parts = (uint32_t)count < nq ? count : (int32_t)nq;
    struct part_load *heap = xmalloc(((size_t)parts + 1) * sizeof *heap);
    for (int32_t c = 0; c < parts; c++) heap[c] = (struct part_load){0, c};
    for (uint32_t t = 0; t < nq; t++) {
        owner[order[t]] = heap[0].index;
        heap[0].load += work[order[t]];
        part_sift_down(heap, parts, 0);
    }
    free(heap);
    free(order);
    free(masked);
    free(work);
    return owner;
}

/* FNV-1a 64 of the clone input: reduce checks that every clone had the same. */
static uint64_t fnv1a64(const unsigned char *p, int32_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int32_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

/* Searches the queries of part `index` of `count` (a clone's share or a
 * task) into out_buf: a "# blast <kind> i/n" line, then each query's lines
 * under its "# query <k>" line, in input order. */
static uint32_t search_part(const char *kind, struct fasta_rec *qs, uint32_t nq, const int32_t *owner, int32_t index,
                            int32_t count, uint64_t digest, int progress) {
    uint32_t mine = 0;
    for (uint32_t k = 0; k < nq; k++) mine += owner[k] == index;
    char line[160];
    int n = snprintf(line, sizeof line, "# blast %s %d/%d: %u of %u queries, input %016llx\n", kind, (int)index,
                     (int)count, mine, nq, (unsigned long long)digest);
    out_len = 0;
    out_append(line, (size_t)n);
    uint32_t done = 0;
    for (uint32_t k = 0; k < nq; k++) {
        if (owner[k] != index) continue;
        n = snprintf(line, sizeof line, "# query %u\n", k);
        out_append(line, (size_t)n);
        search_query(qs[k].name, qs[k].seq, (int)qs[k].len);
        if (progress) flurry_progress((int32_t)++done, (int32_t)mine);
    }
    flurry_output_write(out_buf, (int32_t)out_len);
    return mine;
}

FLURRY_EXPORT("run") int32_t run(int32_t index, int32_t count) {
    double t0 = flurry_monotonic_ms();
    int32_t size;
    unsigned char *text = read_input(&size);
    uint64_t digest = fnv1a64(text, size);
    struct fasta_rec *qs;
    uint32_t nq = parse_fasta(text, size, &qs);
    int32_t *owner = share_queries(qs, nq, count);
    double t_share = flurry_monotonic_ms() - t0;
    uint32_t mine = search_part("clone", qs, nq, owner, index, count, digest, 1);
    printf("blast: clone %d/%d: %u of %u queries in %.0f ms (sharing %.0f ms)\n", (int)index, (int)count, mine, nq,
           flurry_monotonic_ms() - t0, t_share);
    fflush(stdout);
    return 0;
}

/* A task job's queries, parsed by the first run_task of an instance and kept
 * for the next ones (the input is the same for every task of the job), with
 * the deal for the job's task count. Tasks are dealt as clones are, by
 * estimated work; with at least as many tasks as queries, task t holds the
 * t-th largest query, so a host that hands tasks out in order starts the
 * longest first. */
static struct fasta_rec *task_qs;
static uint32_t task_nq;
static uint64_t task_digest;
static int32_t *task_owner;
static int32_t task_count;

FLURRY_EXPORT("run_task") int32_t run_task(int32_t task, int32_t tasks) {
    if (tasks < 1 || task < 0 || task >= tasks) {
        fprintf(stderr, "blast: run_task(%d, %d): the task must be in [0, tasks)\n", (int)task, (int)tasks);
        fflush(stderr);
        return 2;
    }
    if (!task_qs) {
        int32_t size;
        unsigned char *text = read_input(&size);
        task_digest = fnv1a64(text, size);
        task_nq = parse_fasta(text, size, &task_qs);
    }
    if (tasks != task_count) {
        free(task_owner);
        task_owner = share_queries(task_qs, task_nq, tasks);
        task_count = tasks;
    }
    search_part("task", task_qs, task_nq, task_owner, task, tasks, task_digest, 0);
    return 0;
}

/* ---- reduce: the clones' (or tasks') queries back in input order ---- */

static int reduce_fail(const char *why, int32_t part) {
    fprintf(stderr, "blast reduce: output %d: %s\n", (int)part, why);
    fflush(stderr);
    return 2;
}

FLURRY_EXPORT("reduce") int32_t reduce(int32_t count) {
    int32_t size;
    unsigned char *in = read_input(&size);
    uint32_t total = 0;
    unsigned long long digest = 0;
    /* Each query's block of lines: where it is in the input. */
    int32_t *block_at = NULL, *block_len = NULL;
    int32_t at = 0;
    for (int32_t k = 0; k < count; k++) {
        if (at + 4 > size) return reduce_fail("output missing", k);
        uint32_t len = (uint32_t)in[at] | (uint32_t)in[at + 1] << 8 | (uint32_t)in[at + 2] << 16 | (uint32_t)in[at + 3] << 24;
        at += 4;
        if (len > (uint32_t)(size - at)) return reduce_fail("output cut short", k);
        const char *p = (const char *)in + at, *end = p + len;
        at += (int32_t)len;
        int index, n;
        unsigned mine, nq;
        unsigned long long d;
        char kind[8];
        if (sscanf(p, "# blast %7s %d/%d: %u of %u queries, input %llx", kind, &index, &n, &mine, &nq, &d) != 6 ||
            (strcmp(kind, "clone") != 0 && strcmp(kind, "task") != 0))
            return reduce_fail("output does not start with its '# blast clone' or '# blast task' line", k);
        if (index != k || n != count) return reduce_fail("output is of another part or part count", k);
        if (k == 0) {
            total = nq;
            digest = d;
            block_at = xmalloc(((size_t)total + 1) * sizeof *block_at);
            block_len = xmalloc(((size_t)total + 1) * sizeof *block_len);
            for (uint32_t q = 0; q < total; q++) block_at[q] = -1;
        } else if (nq != total || d != digest) {
            return reduce_fail("searched another query set than output 0: give every clone the same input (the job's"
                               " `input`), each searches its own share of it", k);
        }
        p = memchr(p, '\n', (size_t)(end - p));
        p = p ? p + 1 : end;
        int32_t cur = -1;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *next = nl ? nl + 1 : end;
            if (*p == '#') {
                unsigned q;
                if (sscanf(p, "# query %u", &q) != 1 || q >= total) return reduce_fail("bad '# query' line", k);
                if (block_at[q] >= 0) return reduce_fail("a query searched twice", k);
                cur = (int32_t)q;
                block_at[q] = (int32_t)(next - (const char *)in);
                block_len[q] = 0;
            } else {
                if (cur < 0) return reduce_fail("hits before the first '# query' line", k);
                block_len[cur] = (int32_t)(next - (const char *)in) - block_at[cur];
            }
            p = next;
        }
    }
    out_len = 0;
    for (uint32_t q = 0; q < total; q++) {
        if (block_at[q] < 0) {
            fprintf(stderr, "blast reduce: no clone or task searched query %u of %u\n", q, total);
            fflush(stderr);
            return 2;
        }
        out_append((const char *)in + block_at[q], (size_t)block_len[q]);
    }
    if (out_len) flurry_output_write(out_buf, (int32_t)out_len);
    return 0;
}
