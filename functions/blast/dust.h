#ifndef BLAST_DUST_H
#define BLAST_DUST_H
/* Sets mask[i] = 1 for the bases of seq (codes 0..3, anything else breaks
 * the sequence) in low-complexity intervals: symmetric DUST at `level`
 * (blastn: 20) over windows of `window` bases (64). */
void dust_mask(const unsigned char *seq, int len, int level, int window, unsigned char *mask);
#endif
