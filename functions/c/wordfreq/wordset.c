#include <stdlib.h>
#include <string.h>

#include "wordset.h"

static uint32_t hash(const unsigned char *p, int32_t len) {
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

void wordset_init(struct wordset *s, uint32_t cap) {
    uint32_t c = 16;
    while (c < cap) c <<= 1;
    s->slots = calloc(c, sizeof *s->slots);
    if (!s->slots) abort();
    s->cap = c;
    s->used = 0;
}

static struct word *slot_for(const struct wordset *s, const unsigned char *text, int32_t len) {
    uint32_t mask = s->cap - 1;
    for (uint32_t i = hash(text, len) & mask;; i = (i + 1) & mask) {
        struct word *w = &s->slots[i];
        if (!w->text) return w;
        if (w->len == len && memcmp(w->text, text, (size_t)len) == 0) return w;
    }
}

struct word *wordset_find(const struct wordset *s, const unsigned char *text, int32_t len) {
    if (s->cap == 0) return NULL;
    struct word *w = slot_for(s, text, len);
    return w->text ? w : NULL;
}

static void grow(struct wordset *s) {
    struct wordset bigger;
    wordset_init(&bigger, s->cap * 2);
    for (uint32_t i = 0; i < s->cap; i++) {
        if (s->slots[i].text) *slot_for(&bigger, s->slots[i].text, s->slots[i].len) = s->slots[i];
    }
    bigger.used = s->used;
    free(s->slots);
    *s = bigger;
}

struct word *wordset_add(struct wordset *s, const unsigned char *text, int32_t len) {
    if ((s->used + 1) * 4 > s->cap * 3) grow(s); /* keep the load under 3/4 */
    struct word *w = slot_for(s, text, len);
    if (!w->text) {
        w->text = text;
        w->len = len;
        w->count = 0;
        s->used++;
    }
    return w;
}

struct word **wordset_entries(const struct wordset *s) {
    struct word **out = malloc(sizeof *out * (s->used ? s->used : 1));
    if (!out) abort();
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->cap; i++) {
        if (s->slots[i].text) out[n++] = &s->slots[i];
    }
    return out;
}
