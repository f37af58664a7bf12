/*
 * gunzip for the init input: a gzip member (RFC 1952) holding a raw DEFLATE
 * stream (RFC 1951): stored, fixed and dynamic Huffman blocks. Written
 * after the RFCs in the style of zlib's puff.c (canonical Huffman decoding,
 * one bit at a time per code length).
 */
#include <stdlib.h>
#include <string.h>

#include "inflate.h"

struct in { const unsigned char *p; size_t n, pos; unsigned bitbuf, bitcnt; int err; };
struct out { unsigned char *p; size_t n, cap; };
struct huff { short count[16]; short symbol[320]; };

static unsigned bits(struct in *s, int need) {
    unsigned long val = s->bitbuf;
    while (s->bitcnt < (unsigned)need) {
        if (s->pos >= s->n) { s->err = 1; return 0; }
        val |= (unsigned long)s->p[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    s->bitbuf = (unsigned)(val >> need);
    s->bitcnt -= (unsigned)need;
    return (unsigned)(val & ((1UL << need) - 1));
}

static int put(struct out *o, unsigned char c) {
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 1 << 20;
        unsigned char *q = realloc(o->p, o->cap);
        if (!q) return -1;
        o->p = q;
    }
    o->p[o->n++] = c;
    return 0;
}

static int decode(struct in *s, const struct huff *h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= 15; len++) {
        code |= (int)bits(s, 1);
        if (s->err) return -1;
        int count = h->count[len];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static int construct(struct huff *h, const short *length, int n) {
    short offs[16];
    memset(h->count, 0, sizeof h->count);
    for (int s = 0; s < n; s++) h->count[length[s]]++;
    if (h->count[0] == n) return 0;
    int left = 1;
    for (int len = 1; len <= 15; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
    }
    offs[1] = 0;
    for (int len = 1; len < 15; len++) offs[len + 1] = (short)(offs[len] + h->count[len]);
    for (int s = 0; s < n; s++) if (length[s]) h->symbol[offs[length[s]]++] = (short)s;
    return left;
}

static const short LBASE[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short LEXT[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const short DBASE[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const short DEXT[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int codes(struct in *s, struct out *o, const struct huff *lc, const struct huff *dc) {
    for (;;) {
        int sym = decode(s, lc);
        if (sym < 0) return -1;
        if (sym < 256) { if (put(o, (unsigned char)sym)) return -1; continue; }
        if (sym == 256) return 0;
        sym -= 257;
        if (sym >= 29) return -1;
        int len = LBASE[sym] + (int)bits(s, LEXT[sym]);
        int d = decode(s, dc);
        if (d < 0 || d >= 30) return -1;
        size_t dist = (size_t)DBASE[d] + bits(s, DEXT[d]);
        if (s->err || dist > o->n) return -1;
        while (len--) if (put(o, o->p[o->n - dist])) return -1;
    }
}

static int fixed(struct in *s, struct out *o) {
    static struct huff lc, dc;
    static int built;
    if (!built) {
        short l[320];
        int k;
        for (k = 0; k < 144; k++) l[k] = 8;
        for (; k < 256; k++) l[k] = 9;
        for (; k < 280; k++) l[k] = 7;
        for (; k < 288; k++) l[k] = 8;
        construct(&lc, l, 288);
        for (k = 0; k < 30; k++) l[k] = 5;
        construct(&dc, l, 30);
        built = 1;
    }
    return codes(s, o, &lc, &dc);
}

static int dynamic(struct in *s, struct out *o) {
    static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    short lengths[320];
    struct huff lc, dc;
    int nlen = (int)bits(s, 5) + 257, ndist = (int)bits(s, 5) + 1, ncode = (int)bits(s, 4) + 4;
    if (s->err || nlen > 286 || ndist > 30) return -1;
    int k;
    for (k = 0; k < ncode; k++) lengths[order[k]] = (short)bits(s, 3);
    for (; k < 19; k++) lengths[order[k]] = 0;
    if (construct(&lc, lengths, 19) != 0) return -1;
    k = 0;
    while (k < nlen + ndist) {
        int sym = decode(s, &lc);
        if (sym < 0) return -1;
        if (sym < 16) { lengths[k++] = (short)sym; continue; }
        short len = 0;
        int rep;
        if (sym == 16) { if (k == 0) return -1; len = lengths[k - 1]; rep = 3 + (int)bits(s, 2); }
        else if (sym == 17) rep = 3 + (int)bits(s, 3);
        else rep = 11 + (int)bits(s, 7);
        if (k + rep > nlen + ndist) return -1;
        while (rep--) lengths[k++] = len;
    }
    if (lengths[256] == 0) return -1;
    int err = construct(&lc, lengths, nlen);
    if (err < 0 || (err > 0 && nlen - lc.count[0] != 1)) return -1;
    err = construct(&dc, lengths + nlen, ndist);
    if (err < 0 || (err > 0 && ndist - dc.count[0] != 1)) return -1;
    return codes(s, o, &lc, &dc);
}

int is_gzip(const unsigned char *p, size_t n) { return n >= 18 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8; }

unsigned char *gunzip(const unsigned char *p, size_t n, size_t *out_len) {
    if (!is_gzip(p, n)) return NULL;
    unsigned flags = p[3];
    size_t pos = 10;
    if (flags & 4) { if (pos + 2 > n) return NULL; pos += 2 + (size_t)(p[pos] | p[pos + 1] << 8); }
    if (flags & 8) { while (pos < n && p[pos]) pos++; pos++; }
    if (flags & 16) { while (pos < n && p[pos]) pos++; pos++; }
    if (flags & 2) pos += 2;
    if (pos >= n) return NULL;
    struct in s = {p, n, pos, 0, 0, 0};
    struct out o = {NULL, 0, 0};
    int last;
    do {
        last = (int)bits(&s, 1);
        int type = (int)bits(&s, 2);
        int err;
        if (s.err) err = -1;
        else if (type == 0) {
            s.bitbuf = s.bitcnt = 0;
            if (s.pos + 4 > n) err = -1;
            else {
                unsigned len = p[s.pos] | p[s.pos + 1] << 8, nlen = p[s.pos + 2] | p[s.pos + 3] << 8;
                s.pos += 4;
                if (len != (~nlen & 0xffff) || s.pos + len > n) err = -1;
                else {
                    err = 0;
                    for (unsigned k = 0; k < len && !err; k++) err = put(&o, p[s.pos + k]);
                    s.pos += len;
                }
            }
        } else if (type == 1) err = fixed(&s, &o);
        else if (type == 2) err = dynamic(&s, &o);
        else err = -1;
        if (err) { free(o.p); return NULL; }
    } while (!last);
    *out_len = o.n;
    return o.p ? o.p : calloc(1, 1);
}
