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

#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

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
static uint32_t *block_seq;    /* per 4 KiB of db: the sequence its first byte is in (or the separator before) */
#define SEQ_BLOCK_BITS 12
static uint32_t *word_first;   /* NWORDS + 1 offsets into word_pos */
static uint32_t *word_pos;     /* db offsets of each 11-mer's start */

/* Residue codes: A C G T = 0..3; 4 separates database sequences; an IUPAC
 * ambiguity code is 16 + its 4-bit base mask (A 1, C 2, G 4, T 8). */
static unsigned char code_of[256];
static signed char pair_score[32][32]; /* the score of any two residue codes */
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
            if ((ma & mb) == 0 || d == 0) { pair_score[a][b] = PENALTY; continue; }
            double v = (double)((d - 1) * PENALTY + REWARD) / d;
            pair_score[a][b] = (signed char)(v >= 0 ? (int)(v + 0.5) : (int)(v - 0.5));
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
    db = xmalloc(db_size + WORD + 16); /* the search reads a little past the end (search_strand) */
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
    uint32_t blocks = (db_size >> SEQ_BLOCK_BITS) + 1;
    block_seq = xmalloc((size_t)blocks * sizeof *block_seq);
    for (uint32_t b = 0, k = 0; b < blocks; b++) {
        while (k + 1 < nseq && seq_start[k + 1] <= b << SEQ_BLOCK_BITS) k++;
        block_seq[b] = k;
    }
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

/* Traceback storage for the gapped X-drop DP. */
static unsigned char *tb;
static size_t tb_cap;
static size_t *row_off;
static int *row_lo;
static size_t row_cap;
static int *Hc, *Hp, *Fc, *Fp, *Dc, *Bc, *Ec;
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
    Dc = xrealloc(Dc, col_cap * sizeof *Dc);
    Ec = xrealloc(Ec, col_cap * sizeof *Ec);
    Bc = xrealloc(Bc, col_cap * sizeof *Bc);
}

/*
 * X-drop gapped extension of A[0..alen) against B[0..blen) from (0,0), affine
 * gaps. Returns the best score; *bi, *bj = residues of A and B used. With
 * `trace` the ops (M, I = A residue against a gap, D = B residue against a
 * gap) are written in forward order to *ops_out (length in *nops); without,
 * only the score and the end are found (blastn's preliminary stage).
 *
 * Dead cells hold NEG. A sum with NEG (at least NEG - 7, no overflow) stays
 * far below any live value, so a cell needs no test of its neighbours: the
 * larger of two candidates is the same as when dead ones were NEG exactly,
 * and a live cell (within X of the best) is never made of a dead one. The
 * cell takes no branch but on a new best (the row's first live column is
 * found after the row); V8 keeps the selects free of jumps. Traceback bits:
 * the source of H in the low two (0 diagonal, 1 E, 2 F), 4 E opened, 8 F
 * opened here.
 */
#define XDROP_CELL(HUP, FUP, S)                                             \
    do {                                                                    \
        int hup_ = (HUP), fo = hup_ - go, fe = (FUP) - ge;                  \
        int f = fo >= fe ? fo : fe;                                         \
        int eo = hleft - go, ee = e - ge;                                   \
        int en = eo >= ee ? eo : ee;                                        \
        int d = hd + (S);                                                   \
        h = d;                                                              \
        h = en > h ? en : h;                                                \
        h = f > h ? f : h;                                                  \
        if (trace) {                                                        \
            int t = (fo >= fe ? 8 : 0) | (eo >= ee ? 4 : 0);                \
            t |= f > (en > d ? en : d) ? 2 : en > d ? 1 : 0;                \
            tb[tb_base + (size_t)j] = (unsigned char)t;                     \
        }                                                                   \
        h = h < lim ? NEG : h;                                              \
        if (h > best) { best = h; best_i = i; best_j = j; lim = best - X; } \
        hc[j] = h;                                                          \
        fc[j] = f < lim ? NEG : f;                                          \
        e = en < lim ? NEG : en;                                            \
        hleft = h;                                                          \
        hd = hup_;                                                          \
    } while (0)

/* A row's first pass, over columns [lo, hi] of the previous row's window
 * (lo >= 1, hp[lo - 1] dead): what comes from above and from the diagonal,
 * which needs no cell on the left, so four columns go at once with wasm
 * SIMD. fc = F, dc = the diagonal, bc = the larger; with trace, F's opening
 * bit goes to trow[j - lo]. */
static inline __attribute__((always_inline)) void xdrop_from_above(const int *hp, const int *fp, const unsigned char *B,
                                                                   const signed char *sc, int lo, int hi, int *fc, int *dc,
                                                                   int *bc, unsigned char *trow, const int trace) {
    const int go = GAP_OPEN + GAP_EXTEND, ge = GAP_EXTEND;
    int j = lo;
#ifdef __wasm_simd128__
    const v128_t vgo = wasm_i32x4_splat(go), vge = wasm_i32x4_splat(ge), v8 = wasm_i32x4_splat(8);
    /* The score of B's code c: sc[c] from one of the table's two halves. */
    const v128_t tlo = wasm_v128_load(sc), thi = wasm_v128_load(sc + 16), v16 = wasm_i8x16_splat(16);
    for (; j + 3 <= hi; j += 4) {
        v128_t codes = wasm_v128_load32_zero(B + j - 1);
        v128_t s8 = wasm_i8x16_add(wasm_i8x16_swizzle(tlo, codes), wasm_i8x16_swizzle(thi, wasm_i8x16_sub(codes, v16)));
        v128_t s4 = wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(s8));
        v128_t fo = wasm_i32x4_sub(wasm_v128_load(hp + j), vgo), fe = wasm_i32x4_sub(wasm_v128_load(fp + j), vge);
        v128_t f = wasm_i32x4_max(fo, fe), d = wasm_i32x4_add(wasm_v128_load(hp + j - 1), s4);
        wasm_v128_store(fc + j, f);
        wasm_v128_store(bc + j, wasm_i32x4_max(d, f));
        if (trace) {
            wasm_v128_store(dc + j, d);
            v128_t bit = wasm_v128_and(wasm_i32x4_ge(fo, fe), v8);
            bit = wasm_i16x8_narrow_i32x4(bit, bit);
            wasm_v128_store32_lane(trow + (j - lo), wasm_u8x16_narrow_i16x8(bit, bit), 0);
        }
    }
#endif
    for (; j <= hi; j++) {
        int fo = hp[j] - go, fe = fp[j] - ge, f = fo >= fe ? fo : fe, d = hp[j - 1] + sc[B[j - 1]];
        fc[j] = f;
        bc[j] = d >= f ? d : f;
        if (trace) { dc[j] = d; trow[j - lo] = fo >= fe ? 8 : 0; }
    }
}

/* A row's second pass, one cell: E from the left, H, the X-drop (with
 * trace, E is kept for the bits: xdrop_trace_bits). E and F
 * need not be set to NEG here when they drop below the limit: a value below
 * it only ever makes values below it (the limit never falls), so it stays
 * out of every live cell and every comparison that picks one; F is cut
 * after the row (xdrop_cut_f), for the window of the next. */
#define XDROP_CELL_LEFT()                                                   \
    do {                                                                    \
        int eo = hleft - go, ee = e - ge;                                   \
        int en = eo >= ee ? eo : ee;                                        \
        h = bc[j];                                                          \
        h = en > h ? en : h;                                                \
        if (trace) ec[j] = en;                                              \
        h = h < lim ? NEG : h;                                              \
        if (h > best) { best = h; best_i = i; best_j = j; lim = best - X; } \
        hc[j] = h;                                                          \
        e = en;                                                             \
        hleft = h;                                                          \
    } while (0)

/* A row's third pass, with trace: the bits the second pass left out, from
 * what it kept (hc, and ec: E of each column, ec[lo - 1] and hc[lo - 1]
 * what came into column lo from the left), four columns at once: E opened
 * here (4), and H's source in the low two (F if above both E and the
 * diagonal, else E if above the diagonal). */
static inline __attribute__((always_inline)) void xdrop_trace_bits(const int *hc, const int *ec, const int *dc,
                                                                   const int *fc, int lo, int hi, unsigned char *trow) {
    const int go = GAP_OPEN + GAP_EXTEND, ge = GAP_EXTEND;
    int j = lo;
#ifdef __wasm_simd128__
    const v128_t vgo = wasm_i32x4_splat(go), vge = wasm_i32x4_splat(ge);
    const v128_t v1 = wasm_i32x4_splat(1), v2 = wasm_i32x4_splat(2), v4 = wasm_i32x4_splat(4);
    for (; j + 3 <= hi; j += 4) {
        v128_t eo = wasm_i32x4_sub(wasm_v128_load(hc + j - 1), vgo), ee = wasm_i32x4_sub(wasm_v128_load(ec + j - 1), vge);
        v128_t en = wasm_v128_load(ec + j), d = wasm_v128_load(dc + j), f = wasm_v128_load(fc + j);
        v128_t src = wasm_v128_bitselect(v2, wasm_v128_and(wasm_i32x4_gt(en, d), v1), wasm_i32x4_gt(f, wasm_i32x4_max(en, d)));
        v128_t t = wasm_v128_or(src, wasm_v128_and(wasm_i32x4_ge(eo, ee), v4));
        t = wasm_i16x8_narrow_i32x4(t, t);
        t = wasm_v128_or(wasm_u8x16_narrow_i16x8(t, t), wasm_v128_load32_zero(trow + (j - lo)));
        wasm_v128_store32_lane(trow + (j - lo), t, 0);
    }
#endif
    for (; j <= hi; j++) {
        int eo = hc[j - 1] - go, ee = ec[j - 1] - ge, en = ec[j], d = dc[j], f = fc[j];
        trow[j - lo] |= (unsigned char)((eo >= ee ? 4 : 0) | (f > (en > d ? en : d) ? 2 : en > d ? 1 : 0));
    }
}

/* F below `lim` on columns [lo, hi] becomes NEG: the columns where only F
 * lives, left of the row's first live H, stay in the next row's window
 * only while F is within X of the best. */
static inline __attribute__((always_inline)) void xdrop_cut_f(int *fc, int lo, int hi, int lim) {
    int j = lo;
#ifdef __wasm_simd128__
    const v128_t vlim = wasm_i32x4_splat(lim), vneg = wasm_i32x4_splat(NEG);
    for (; j + 3 <= hi; j += 4) {
        v128_t f = wasm_v128_load(fc + j);
        wasm_v128_store(fc + j, wasm_v128_bitselect(vneg, f, wasm_i32x4_lt(f, vlim)));
    }
#endif
    for (; j <= hi; j++) if (fc[j] < lim) fc[j] = NEG;
}

static inline __attribute__((always_inline)) int xdrop_core(const unsigned char *A, int alen, const unsigned char *B,
                                                            int blen, int X, int *bi, int *bj, const int trace) {
    const int go = GAP_OPEN + GAP_EXTEND, ge = GAP_EXTEND;
    ensure_cols((size_t)blen + 2);
    if (trace && (size_t)alen + 1 > row_cap) {
        row_cap = ((size_t)alen + 1) * 2;
        row_off = xrealloc(row_off, row_cap * sizeof *row_off);
        row_lo = xrealloc(row_lo, row_cap * sizeof *row_lo);
    }
    int *hp = Hp, *fp = Fp, *hc = Hc, *fc = Fc, *dc = Dc, *bc = Bc, *ec = Ec;
    size_t tb_len = 0;
    int best = 0, best_i = 0, best_j = 0;
    /* Row 0: a gap along B. */
    int hi = 0;
    hp[0] = 0;
    fp[0] = NEG;
    if (trace) {
        if (tb_cap < (size_t)blen + 1) { tb_cap = ((size_t)blen + 1) * 4; tb = xrealloc(tb, tb_cap); }
        tb[tb_len++] = 0;
    }
    for (int j = 1; j <= blen; j++) {
        int h = -(GAP_OPEN + GAP_EXTEND * j);
        if (h < best - X) break;
        hp[j] = h;
        fp[j] = NEG;
        if (trace) tb[tb_len++] = 1 | (j == 1 ? 4 : 0);
        hi = j;
    }
    if (trace) { row_off[0] = 0; row_lo[0] = 0; }
    int plo = 0, phi = hi;
    for (int i = 1; i <= alen; i++) {
        size_t tb_base = 0;
        if (trace) {
            size_t need = tb_len + (size_t)(blen - plo) + 2;
            if (need > tb_cap) { tb_cap = need * 2; tb = xrealloc(tb, tb_cap); }
            row_off[i] = tb_len;
            tb_base = tb_len - (size_t)plo; /* tb[tb_base + j] is cell j of this row */
        }
        const signed char *sc = pair_score[A[i - 1] & 31];
        int clo = -1, lim = best - X;
        int e = NEG, hleft = NEG, hd = NEG, h; /* E and H left of the cell, H on its diagonal */
        int j = plo;
        if (j == 0) { XDROP_CELL(hp[0], fp[0], 0); j++; }
        else hp[j - 1] = NEG; /* outside the window: dead (left of the previous row's first live H) */
        xdrop_from_above(hp, fp, B, sc, j, phi, fc, dc, bc, trace ? tb + (tb_base + (size_t)j) : NULL, trace);
        int cut_from = j;
        if (trace) { hc[j - 1] = hleft; ec[j - 1] = e; } /* hc[plo - 1] is outside the window: dead */
        for (; j <= phi; j++) XDROP_CELL_LEFT();
        if (trace) xdrop_trace_bits(hc, ec, dc, fc, cut_from, phi, tb + (tb_base + (size_t)cut_from));
        xdrop_cut_f(fc, cut_from, phi, lim);
        /* Past the previous row's window only E (and the diagonal from phi) can live. */
        hd = hp[phi];
        for (; j <= blen; j++) {
            XDROP_CELL(NEG, NEG, sc[B[j - 1]]);
            if (h == NEG && e == NEG) { j++; break; }
        }
        for (int k = plo; k < j; k++) if (hc[k] != NEG) { clo = k; break; }
        if (clo < 0) break;
        /* Keep the row's stored window [plo, j-1] for traceback, but next row uses [clo, j-1]. */
        if (trace) { row_lo[i] = plo; tb_len += (size_t)(j - plo); }
        int *sw = hp; hp = hc; hc = sw;
        sw = fp; fp = fc; fc = sw;
        /* F may live where H is dead, left of clo: keep those columns. */
        int nlo = clo;
        for (int k = plo; k < clo; k++) if (fp[k] != NEG) { nlo = k; break; }
        plo = nlo; phi = j - 1;
    }
    *bi = best_i;
    *bj = best_j;
    return best;
}
#undef XDROP_CELL
#undef XDROP_CELL_LEFT

static int xdrop_score(const unsigned char *A, int alen, const unsigned char *B, int blen, int X, int *bi, int *bj) {
    return xdrop_core(A, alen, B, blen, X, bi, bj, 0);
}

static int xdrop_align(const unsigned char *A, int alen, const unsigned char *B, int blen, int X, int *bi,
                       int *bj, char **ops_out, int *nops) {
    int best = xdrop_core(A, alen, B, blen, X, bi, bj, 1);
    /* Traceback from (best_i, best_j). */
    int i = *bi, j = *bj, state = 0, n = 0;
    size_t need = (size_t)i + (size_t)j + 1;
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
 * one (extend_seeds); the alignment is appended to hsps. Without `trace`
 * (the preliminary stage) only its score and box are found, no counts. */
static void gapped_x(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand, int X,
                     int trace);

/* Bounds of the extension (query positions, db offsets; inclusive). */
static int lim_q_lo = 0, lim_q_hi = 0x7fffffff;
static uint32_t lim_s_lo = 0, lim_s_hi = 0xffffffffu;

/* The final extension (X-drop 100 bits, traceback) through (q0, s0). */
static void gapped(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand) {
    size_t before = n_hsps;
    gapped_x(q, qlen, k, s0, q0, strand, x_gapped, 1);
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
        gapped_x(q, qlen, k, s0, q0, strand, x_gapped, 1);
        lim_q_lo = 0; lim_q_hi = 0x7fffffff; lim_s_lo = 0; lim_s_hi = 0xffffffffu;
        return;
    }
}

static void gapped_x(const unsigned char *q, int qlen, uint32_t k, uint32_t s0, int q0, int strand, int X,
                     int trace) {
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
    int li, lj, ln = 0;
    char *lops = NULL;
    int lscore = trace ? xdrop_align(revbuf_a, alen, revbuf_b, blen, X, &li, &lj, &lops, &ln)
                       : xdrop_score(revbuf_a, alen, revbuf_b, blen, X, &li, &lj);
    if ((size_t)ln + 1 > left_cap) { left_cap = ((size_t)ln + 1) * 2; left_ops = xrealloc(left_ops, left_cap); }
    for (int t = 0; t < ln; t++) left_ops[t] = lops[ln - 1 - t];
    /* Right. */
    alen = hi_q - q0;
    blen = (int)(hi_s - s0);
    if (blen > alen + X) blen = alen + X;
    int ri, rj, rn = 0;
    char *rops = NULL;
    int rscore = trace ? xdrop_align(q + q0, alen, db + s0, blen, X, &ri, &rj, &rops, &rn)
                       : xdrop_score(q + q0, alen, db + s0, blen, X, &ri, &rj);
    struct hsp h;
    h.subject = k;
    h.strand = strand;
    h.score = lscore + rscore;
    h.qs = q0 - li;
    h.qe = q0 + ri - 1;
    h.ss = (int)(s0 - lj - sb);
    h.se = (int)(s0 + rj - 1 - sb);
    if (h.qe < h.qs || h.se < h.ss) return;
    /* Counts along the ops (none without trace). */
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

/* The sequence holding db offset p (seq_start[k] <= p < seq_start[k + 1]):
 * from the first sequence of p's block of the database onwards. */
static uint32_t subject_of(uint32_t p) {
    uint32_t k = block_seq[p >> SEQ_BLOCK_BITS];
    while (seq_start[k + 1] <= p) k++;
    return k;
}

/* How far an ungapped extension already reached on each diagonal of the
 * current query strand (db offset + 1; 0: none). An open-addressing table
 * keyed by diagonal + 1, sized to at least twice the strand's word hits, so
 * it never fills, and a clone needs no array as long as the database. Key
 * and value side by side: one cache line per probe. */
static struct diag_entry { uint32_t key, val; } *diag;
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
        diag = xrealloc(diag, cap * sizeof *diag);
    }
    diag_mask = cap - 1;
    memset(diag, 0, cap * sizeof *diag);
}

/* The slot of `diag`: its own, or the empty one where it would go. */
static inline size_t diag_slot(uint32_t dg) {
    uint32_t key = dg + 1;
    size_t i = (size_t)(key * 2654435761u) & diag_mask;
    while (diag[i].key != 0 && diag[i].key != key) i = (i + 1) & diag_mask;
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

/* The hits of one word that passed the diagonal check; the sum of their
 * first bytes, kept so that the loads stay. */
static uint32_t *cand;
static size_t cand_cap;
static volatile unsigned touch_sink;

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
        /* A word's hits lie on distinct diagonals, so extending one never
         * changes the check of another: first all checks, reading each
         * survivor's database bytes (independent loads, their cache misses
         * overlap), then the extensions. */
        uint32_t n_cand = 0, h1 = word_first[w + 1];
        if ((size_t)(h1 - word_first[w]) > cand_cap) {
            cand_cap = (size_t)(h1 - word_first[w]) * 2;
            cand = xrealloc(cand, cand_cap * sizeof *cand);
        }
        unsigned touched = 0;
        for (uint32_t h = word_first[w]; h < h1; h++) {
            uint32_t p = word_pos[h];
            size_t slot = diag_slot(p + (uint32_t)qlen - (uint32_t)qi);
            if (diag[slot].key != 0 && diag[slot].val > p + 1) continue; /* inside an extension already done */
            cand[n_cand++] = p;
            /* The bytes an extension reads: about 15 either side of the word. */
            touched += db[p > 15 ? p - 15 : 0] + db[p + WORD + 15];
        }
        touch_sink += touched;
        for (uint32_t c = 0; c < n_cand; c++) {
            uint32_t p = cand[c];
            uint32_t d = p + (uint32_t)qlen - (uint32_t)qi;
            size_t slot = diag_slot(d);
            uint32_t k = subject_of(p);
            uint32_t sb = seq_start[k], se = sb + seq_len[k];
            /* Ungapped X-drop extension of the word both ways. */
            int score = WORD * REWARD, best = score;
            int bl = 0, br = 0; /* residues added left / right at the best */
            int run = 0;
            int left = qi < (int)(p - sb) ? qi : (int)(p - sb);
            for (int t = 1; t <= left; t++) {
                run += pair_score[q[qi - t]][db[p - (uint32_t)t]];
                if (run > 0) { best += run; bl = t; run = 0; }
                else if (run < -x_ungapped) break;
            }
            run = 0;
            int rb = best;
            int tmax = 0;
            int right = qlen - qi - WORD < (int)(se - p - WORD) ? qlen - qi - WORD : (int)(se - p - WORD);
            for (int t = 0; t < right; t++) {
                run += pair_score[q[qi + WORD + t]][db[p + WORD + (uint32_t)t]];
                tmax = t + 1;
                if (run > 0) { rb += run; br = t + 1; run = 0; }
                else if (run < -x_ungapped) break;
            }
            best = rb;
            uint32_t mark = p + WORD + (uint32_t)tmax;
            if (diag[slot].key == 0) { diag[slot].key = d + 1; diag[slot].val = 0; }
            if (mark + 1 > diag[slot].val) diag[slot].val = mark + 1;
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
        gapped_x(sd->strand ? rc : q, qlen, sd->subject, sd->s0, sd->q0, sd->strand, x_prelim, 0);
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
