/*
 * The Flurry guest ABI for C (clang --target=wasm32-wasi), as listed in
 * docs/guest-abi.md. Pointers and lengths are offsets into the guest's own
 * linear memory, so plain C pointers and int32_t lengths are passed as is.
 *
 * Getters copy at most `cap` bytes and return the full length (call with
 * cap = 0 to size a buffer); the header getters return -1 out of range.
 */
#ifndef FLURRY_H
#define FLURRY_H

#include <stdint.h>

#define FLURRY_IMPORT(name) __attribute__((import_module("flurry"), import_name(name)))
#define FLURRY_EXPORT(name) __attribute__((export_name(name)))

FLURRY_IMPORT("input_size") int32_t flurry_input_size(void);
FLURRY_IMPORT("input_read") int32_t flurry_input_read(void *ptr, int32_t len, int32_t offset);
FLURRY_IMPORT("output_write") void flurry_output_write(const void *ptr, int32_t len);

FLURRY_IMPORT("request_method") int32_t flurry_request_method(char *ptr, int32_t cap);
FLURRY_IMPORT("request_path") int32_t flurry_request_path(char *ptr, int32_t cap);
FLURRY_IMPORT("request_query") int32_t flurry_request_query(char *ptr, int32_t cap);
FLURRY_IMPORT("request_header_count") int32_t flurry_request_header_count(void);
FLURRY_IMPORT("request_header_name") int32_t flurry_request_header_name(int32_t i, char *ptr, int32_t cap);
FLURRY_IMPORT("request_header_value") int32_t flurry_request_header_value(int32_t i, char *ptr, int32_t cap);

FLURRY_IMPORT("response_status") void flurry_response_status(int32_t code);
FLURRY_IMPORT("response_header") void flurry_response_header(const char *name, int32_t name_len,
                                                             const char *value, int32_t value_len);

enum { FLURRY_DEBUG = 0, FLURRY_INFO = 1, FLURRY_WARN = 2, FLURRY_ERROR = 3 };
FLURRY_IMPORT("log") void flurry_log(int32_t level, const char *ptr, int32_t len);

FLURRY_IMPORT("now_ms") double flurry_now_ms(void);
FLURRY_IMPORT("monotonic_ms") double flurry_monotonic_ms(void);
FLURRY_IMPORT("entropy") void flurry_entropy(void *ptr, int32_t len);
FLURRY_IMPORT("progress") void flurry_progress(int32_t done, int32_t total);

#endif
