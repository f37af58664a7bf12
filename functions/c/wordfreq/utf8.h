/* Strict UTF-8 validation (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF). */
#ifndef UTF8_H
#define UTF8_H

#include <stdint.h>

int utf8_valid(const unsigned char *p, int32_t len);

#endif
