/*
 * flurry_thread_priority: a thread's CPU scheduling policy, for guest threads
 * whose work after an answer (resetting and remapping the instance they ran,
 * making the next one ahead) should take a core only when no other thread of
 * the machine wants it (SCHED_IDLE), and their calls at the ordinary policy.
 * TypeScript access: worker-host/src/native/thread-priority.ts.
 *
 * Linux only. Policies change per thread (sched_setscheduler on a thread id);
 * the nice value is kept by both switches (the kernel fills sched_nice from
 * the thread's own when sched_setscheduler is used).
 */
#include <node_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __linux__
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool arg_i32(napi_env env, napi_callback_info info, int32_t *out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a thread id (a number)");
    return false;
  }
  return true;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

/* The calling thread's kernel id (what /proc/PID/task lists). */
static napi_value js_threadId(napi_env env, napi_callback_info info) {
  (void)info;
  return int_value(env, (int32_t)syscall(SYS_gettid));
}

static int set_policy(pid_t tid, int policy) {
  struct sched_param p = {.sched_priority = 0};
  return sched_setscheduler(tid, policy, &p) == 0 ? 0 : errno;
}

/* setIdle(tid) / setNormal(tid): 0, or the errno the kernel refused with (ESRCH: no such thread now). */
static napi_value js_setIdle(napi_env env, napi_callback_info info) {
  int32_t tid;
  if (!arg_i32(env, info, &tid)) return NULL;
  return int_value(env, set_policy(tid, SCHED_IDLE));
}

static napi_value js_setNormal(napi_env env, napi_callback_info info) {
  int32_t tid;
  if (!arg_i32(env, info, &tid)) return NULL;
  return int_value(env, set_policy(tid, SCHED_OTHER));
}

/* policy(tid): "idle", "normal", "other" (batch, real-time), or -errno. */
static napi_value js_policy(napi_env env, napi_callback_info info) {
  int32_t tid;
  if (!arg_i32(env, info, &tid)) return NULL;
  int p = sched_getscheduler(tid);
  if (p < 0) return int_value(env, -errno);
  napi_value out;
  napi_create_string_utf8(env, p == SCHED_IDLE ? "idle" : p == SCHED_OTHER ? "normal" : "other", NAPI_AUTO_LENGTH, &out);
  return out;
}

/*
 * Whether a thread of this process may go to SCHED_IDLE and back: tried on a
 * thread made for the purpose, so that no thread that matters is left idle
 * where the way back is refused (an unprivileged thread returns to SCHED_OTHER
 * only within RLIMIT_NICE: see sched(7)). 0 if both work, else the errno of
 * the step refused, negated for the way back.
 */
static void *probe_thread(void *out) {
  int e = set_policy(0, SCHED_IDLE);
  if (e == 0) {
    int back = set_policy(0, SCHED_OTHER);
    e = back == 0 ? 0 : -back;
  }
  *(int *)out = e;
  return NULL;
}

static napi_value js_probe(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_t t;
  int result = 0;
  int e = pthread_create(&t, NULL, probe_thread, &result);
  if (e != 0) return int_value(env, e);
  pthread_join(t, NULL);
  return int_value(env, result);
}

#define EXPORT_FN(name)                                                        \
  do {                                                                         \
    napi_value fn_;                                                            \
    napi_create_function(env, #name, NAPI_AUTO_LENGTH, js_##name, NULL, &fn_); \
    napi_set_named_property(env, exports, #name, fn_);                         \
  } while (0)

NAPI_MODULE_INIT() {
  EXPORT_FN(threadId);
  EXPORT_FN(setIdle);
  EXPORT_FN(setNormal);
  EXPORT_FN(policy);
  EXPORT_FN(probe);
  return exports;
}

#else /* !__linux__ */

/* Other systems: no per-thread policies; probe() refuses with ENOSYS. */
static napi_value js_probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_int32(env, ENOSYS, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "probe", NAPI_AUTO_LENGTH, js_probe, NULL, &fn);
  napi_set_named_property(env, exports, "probe", fn);
  return exports;
}

#endif
