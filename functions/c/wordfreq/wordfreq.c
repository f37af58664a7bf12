/*
 * wordfreq: counts the words of the request body and answers the most
 * frequent ones as JSON, most frequent first (ties in byte order of the word):
 *
 *   POST /fn/wordfreq?n=3   "the cat and the hat"
 *   {"words":5,"unique":4,"top":[{"word":"the","count":2},{"word":"and","count":1},{"word":"cat","count":1}]}
 *
 * A word is a maximal run of ASCII letters and digits and non-ASCII
 * characters; ASCII letters are lower-cased. `n` defaults to 10 (1..1000).
 * The body must be UTF-8 (else 400). The init input, if any, is a list of
 * stop words (separated by anything that is not a word character) that are
 * never counted: they are loaded once in the warm parent and every call's
 * instance inherits them from the snapshot.
 *
 * stdout goes to the call's log through the host's WASI shim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flurry.h" /* functions/c/flurry.h */
#include "wordset.h"
#include "strbuf.h"
#include "utf8.h"

#define DEFAULT_TOP 10
#define MAX_TOP 1000

static struct wordset stopwords; /* built by init, kept in the snapshot */

/* Reads the call's whole input into a malloc'd buffer. */
static unsigned char *read_input(int32_t *size_out) {
    int32_t size = flurry_input_size();
    unsigned char *buf = malloc((size_t)size + 1);
    if (!buf) abort();
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

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Calls fn(word, len) for each word, lower-casing ASCII letters in place. */
static void for_each_word(unsigned char *text, int32_t size,
                          void (*fn)(const unsigned char *, int32_t, void *), void *ctx) {
    int32_t i = 0;
    while (i < size) {
        while (i < size && !is_word_byte(text[i])) i++;
        int32_t start = i;
        while (i < size && is_word_byte(text[i])) {
            if (text[i] >= 'A' && text[i] <= 'Z') text[i] += 'a' - 'A';
            i++;
        }
        if (i > start) fn(text + start, i - start, ctx);
    }
}

static void add_stopword(const unsigned char *w, int32_t len, void *ctx) {
    (void)ctx;
    wordset_add(&stopwords, w, len);
}

FLURRY_EXPORT("init") void init(void) {
    int32_t size;
    unsigned char *text = read_input(&size);
    wordset_init(&stopwords, 64);
    /* Stop words point into `text`, which therefore stays allocated. */
    for_each_word(text, size, add_stopword, NULL);
    printf("wordfreq: init with %d stop words\n", (int)stopwords.used);
    /* Unflushed stdio would live on in the snapshot and print in every call. */
    fflush(stdout);
}

struct counting {
    struct wordset counts;
    int32_t total;
};

static void count_word(const unsigned char *w, int32_t len, void *ctx) {
    struct counting *c = ctx;
    if (wordset_find(&stopwords, w, len)) return;
    c->total++;
    wordset_add(&c->counts, w, len)->count++;
}

static int by_count_then_word(const void *a, const void *b) {
    const struct word *x = *(const struct word *const *)a;
    const struct word *y = *(const struct word *const *)b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    int32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, (size_t)n);
    if (c != 0) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* The value of query parameter `n`: DEFAULT_TOP when absent, -1 when invalid. */
static int top_from_query(void) {
    int32_t len = flurry_request_query(NULL, 0);
    char *query = malloc((size_t)len + 1);
    if (!query) abort();
    flurry_request_query(query, len);
    query[len] = 0;
    int result = DEFAULT_TOP;
    for (char *p = query; p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (p[0] != 'n' || p[1] != '=') continue;
        char *end;
        long v = strtol(p + 2, &end, 10);
        result = (end == p + 2 || (*end && *end != '&') || v < 1 || v > MAX_TOP) ? -1 : (int)v;
        break;
    }
    free(query);
    return result;
}

static void respond_error(int status, const char *message) {
    struct strbuf out;
    strbuf_init(&out);
    strbuf_printf(&out, "{\"error\":\"%s\"}", message);
    flurry_response_status(status);
    flurry_response_header("content-type", 12, "application/json", 16);
    flurry_output_write(out.data, (int32_t)out.len);
    strbuf_free(&out);
}

FLURRY_EXPORT("handle") int handle(void) {
    double started = flurry_monotonic_ms();
    int top = top_from_query();
    if (top < 0) {
        respond_error(400, "n must be an integer from 1 to 1000");
        return 0;
    }
    int32_t size;
    unsigned char *text = read_input(&size);
    if (!utf8_valid(text, size)) {
        respond_error(400, "body is not valid UTF-8");
        return 0;
    }
    struct counting c = { .total = 0 };
    wordset_init(&c.counts, 1024);
    for_each_word(text, size, count_word, &c);

    struct word **sorted = wordset_entries(&c.counts);
    qsort(sorted, (size_t)c.counts.used, sizeof *sorted, by_count_then_word);

    /* Words hold only letters, digits and valid non-ASCII UTF-8: nothing in
     * them needs a JSON escape. */
    struct strbuf out;
    strbuf_init(&out);
    strbuf_printf(&out, "{\"words\":%d,\"unique\":%d,\"top\":[", (int)c.total, (int)c.counts.used);
    int shown = (int)c.counts.used < top ? (int)c.counts.used : top;
    for (int i = 0; i < shown; i++) {
        strbuf_printf(&out, "%s{\"word\":\"%.*s\",\"count\":%d}", i ? "," : "",
                      (int)sorted[i]->len, (const char *)sorted[i]->text, (int)sorted[i]->count);
    }
    strbuf_append(&out, "]}", 2);
    flurry_response_header("content-type", 12, "application/json", 16);
    flurry_output_write(out.data, (int32_t)out.len);

    printf("wordfreq: %d words, %d unique, %.3f ms\n", (int)c.total, (int)c.counts.used,
           flurry_monotonic_ms() - started);
    /* The instance ends with the call: flush or lose the line. */
    fflush(stdout);
    return 0;
}
