#ifndef BLAST_INFLATE_H
#define BLAST_INFLATE_H
#include <stddef.h>
/* Whether p starts a gzip member (deflate). */
int is_gzip(const unsigned char *p, size_t n);
/* The first member of a gzip file, decompressed (malloc'd), or NULL when it
 * is not valid gzip. The CRC and length trailer are not checked. */
unsigned char *gunzip(const unsigned char *p, size_t n, size_t *out_len);
#endif
