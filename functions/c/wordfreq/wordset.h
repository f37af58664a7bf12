/* A hash set of words (byte strings pointing into someone else's buffer)
 * with a count each: open addressing, linear probing, FNV-1a. */
#ifndef WORDSET_H
#define WORDSET_H

#include <stdint.h>

struct word {
    const unsigned char *text;
    int32_t len;
    int32_t count;
};

struct wordset {
    struct word *slots;
    uint32_t cap;  /* a power of two */
    uint32_t used;
};

void wordset_init(struct wordset *s, uint32_t cap);
/* The entry for the word, or NULL. */
struct word *wordset_find(const struct wordset *s, const unsigned char *text, int32_t len);
/* The entry for the word, added with count 0 if new. */
struct word *wordset_add(struct wordset *s, const unsigned char *text, int32_t len);
/* A malloc'd array of pointers to the `used` entries. */
struct word **wordset_entries(const struct wordset *s);

#endif
