/*
 * Symmetric DUST (Morgulis et al. 2006), the low-complexity filter blastn
 * applies to queries by default (level 20, window 64): masks every
 * "perfect" interval whose triplet score, sum c(c-1)/2 over the triplet
 * counts divided by the triplet count minus one, exceeds level / 10. After
 * the published algorithm as in Heng Li's sdust (minimap2, MIT).
 */
#include <stdlib.h>
#include <string.h>

#include "dust.h"

#define WLEN 3
#define WTOT (1 << (WLEN << 1))
#define WMSK (WTOT - 1)

struct perf { int start, finish, r, l; };

struct state {
    int *w; int wcap, wfront, wcount; /* ring buffer of triplets */
    struct perf *P; int pn, pcap;
    int *res; int rn, rcap;           /* pairs start, finish (exclusive) */
};

static int w_at(const struct state *s, int i) { return s->w[(s->wfront + i) % s->wcap]; }
static int w_shift(struct state *s) { int v = s->w[s->wfront]; s->wfront = (s->wfront + 1) % s->wcap; s->wcount--; return v; }
static void w_push(struct state *s, int v) { s->w[(s->wfront + s->wcount) % s->wcap] = v; s->wcount++; }

static void shift_window(struct state *s, int t, int T, int W, int *L, int *rw, int *rv, int *cw, int *cv) {
    int x;
    if (s->wcount >= W - WLEN + 1) {
        x = w_shift(s);
        *rw -= --cw[x];
        if (*L > s->wcount) { --*L; *rv -= --cv[x]; }
    }
    w_push(s, t);
    ++*L;
    *rw += cw[t]++;
    *rv += cv[t]++;
    if (cv[t] * 10 > T << 1) {
        do {
            x = w_at(s, s->wcount - *L);
            *rv -= --cv[x];
            --*L;
        } while (x != t);
    }
}

static void save_masked(struct state *s, int start) {
    if (s->pn == 0 || s->P[s->pn - 1].start >= start) return;
    struct perf *p = &s->P[s->pn - 1];
    int saved = 0;
    if (s->rn) {
        int f = s->res[2 * s->rn - 1];
        if (p->start <= f) { saved = 1; if (p->finish > f) s->res[2 * s->rn - 1] = p->finish; }
    }
    if (!saved) {
        if (s->rn == s->rcap) { s->rcap = s->rcap ? s->rcap * 2 : 16; s->res = realloc(s->res, (size_t)s->rcap * 2 * sizeof *s->res); if (!s->res) abort(); }
        s->res[2 * s->rn] = p->start;
        s->res[2 * s->rn + 1] = p->finish;
        s->rn++;
    }
    int i;
    for (i = s->pn - 1; i >= 0 && s->P[i].start < start; --i) {}
    s->pn = i + 1;
}

static void find_perfect(struct state *s, int T, int start, int L, int rv, const int *cv) {
    int c[WTOT], r = rv, max_r = 0, max_l = 0;
    memcpy(c, cv, sizeof c);
    for (int i = s->wcount - L - 1; i >= 0; --i) {
        int t = w_at(s, i), j;
        r += c[t]++;
        int new_r = r, new_l = s->wcount - i - 1;
        if (new_r * 10 > T * new_l) {
            for (j = 0; j < s->pn && s->P[j].start >= i + start; ++j) {
                struct perf *p = &s->P[j];
                if (max_r == 0 || p->r * max_l > max_r * p->l) { max_r = p->r; max_l = p->l; }
            }
            if (max_r == 0 || new_r * max_l >= max_r * new_l) {
                max_r = new_r;
                max_l = new_l;
                if (s->pn == s->pcap) { s->pcap = s->pcap ? s->pcap * 2 : 16; s->P = realloc(s->P, (size_t)s->pcap * sizeof *s->P); if (!s->P) abort(); }
                memmove(&s->P[j + 1], &s->P[j], (size_t)(s->pn - j) * sizeof *s->P);
                s->pn++;
                s->P[j].start = i + start;
                s->P[j].finish = s->wcount + (WLEN - 1) + start;
                s->P[j].r = new_r;
                s->P[j].l = new_l;
            }
        }
    }
}

void dust_mask(const unsigned char *seq, int len, int level, int window, unsigned char *mask) {
    if (len <= 0) return;
    struct state s;
    memset(&s, 0, sizeof s);
    s.wcap = window;
    s.w = malloc((size_t)window * sizeof *s.w);
    if (!s.w) abort();
    int rv = 0, rw = 0, L = 0, cv[WTOT], cw[WTOT];
    memset(cv, 0, sizeof cv);
    memset(cw, 0, sizeof cw);
    int l = 0, start;
    unsigned t = 0;
    for (int i = 0; i <= len; ++i) {
        int b = i < len && seq[i] < 4 ? seq[i] : 4;
        if (b < 4) {
            ++l;
            t = (t << 2 | (unsigned)b) & WMSK;
            if (l >= WLEN) {
                start = (l - window > 0 ? l - window : 0) + (i + 1 - l);
                save_masked(&s, start);
                shift_window(&s, (int)t, level, window, &L, &rw, &rv, cw, cv);
                if (rw * 10 > L * level) find_perfect(&s, level, start, L, rv, cv);
            }
        } else {
            start = (l - window + 1 > 0 ? l - window + 1 : 0) + (i + 1 - l);
            while (s.pn) save_masked(&s, start++);
            l = 0;
            t = 0;
            /* A new piece: the window starts empty. */
            s.wfront = s.wcount = 0;
            rv = rw = L = 0;
            memset(cv, 0, sizeof cv);
            memset(cw, 0, sizeof cw);
        }
    }
    memset(mask, 0, (size_t)len);
    for (int k = 0; k < s.rn; k++) {
        for (int p = s.res[2 * k]; p < s.res[2 * k + 1] && p < len; p++) mask[p] = 1;
    }
    free(s.w);
    free(s.P);
    free(s.res);
}
