/*
 * Direct replies: what a guest thread needs to write a call's reply frame
 * to its call channel's socket itself (worker-host/src/reply-lines.ts).
 *
 * - dupFd(fd) -> a duplicate of the socket's descriptor (close-on-exec). Node
 *   closes a socket's own descriptor when the socket closes, and the number
 *   may then name another file at once; the duplicate names the socket until
 *   the host's main thread closes it with closeFd, which it does only once no
 *   guest thread can write to it.
 * - sendNow(fd, bytes) -> the bytes the socket took at once, 0 when it took
 *   none (its buffer full, or closed by its peer): never blocks (a guest
 *   thread must not wait for the gateway) and never raises SIGPIPE.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

static napi_value fail(napi_env env, const char *what, int e) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, "ERR_FLURRY_DIRECT_REPLY", msg);
  return NULL;
}

static napi_value js_dupFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_uint32(env, argv[0], &fd) != napi_ok)
    return fail(env, "dupFd(fd)", EINVAL);
  int d = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return fail(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  napi_value out;
  napi_create_int32(env, d, &out);
  return out;
}

static napi_value js_sendNow(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t fd;
  bool is = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_uint32(env, argv[0], &fd) != napi_ok || napi_is_typedarray(env, argv[1], &is) != napi_ok || !is)
    return fail(env, "sendNow(fd, Uint8Array)", EINVAL);
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array)
    return fail(env, "sendNow(fd, Uint8Array)", EINVAL);
  ssize_t w;
  do w = send((int)fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  napi_value out;
  napi_create_double(env, w < 0 ? 0 : (double)w, &out);
  return out;
}

void direct_replies_export(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "dupFd", NAPI_AUTO_LENGTH, js_dupFd, NULL, &fn);
  napi_set_named_property(env, exports, "dupFd", fn);
  napi_create_function(env, "sendNow", NAPI_AUTO_LENGTH, js_sendNow, NULL, &fn);
  napi_set_named_property(env, exports, "sendNow", fn);
}
