/*
 * flurry_pager: the native pager of a Flurry worker host.
 *
 * - Page stores: a C-side cache of one snapshot's pages on this host, kept in
 *   a memfd (pages not on the host yet are holes in it).
 * - Lazy guest memory: a WebAssembly memory with its store's memfd mapped
 *   MAP_PRIVATE over the snapshot's pages, registered with userfaultfd
 *   (MISSING) up to its declared maximum. A page the host holds is in the
 *   memfd's page cache, so the kernel maps it at a fault as for any file
 *   (a write copies it): no userfault. Only holes fault to the pager: one
 *   handler thread per process (epoll over every userfaultfd) serves them
 *   without JavaScript: UFFDIO_ZEROPAGE for zero pages, UFFDIO_COPY of a run
 *   of pages for a page put since the fault was raised. That is with
 *   storeConfigure's mapPages, where the kernel can register MISSING on
 *   shmem; otherwise nothing is mapped and every first touch faults to the
 *   pager, served by UFFDIO_COPY of a run of pages from the store.
 *   Pages the host does not have yet are asked for through a thread-safe
 *   function on the thread that called setMissHandler (the host's main
 *   thread); storePut later wakes every fault waiting on them. If the
 *   handler thread dies, it says why to every setHandlerDeathHandler
 *   callback, fails the registrations it served, and nothing can be
 *   registered any more (handler_died).
 * - Dirty tracking for live migration: UFFDIO_REGISTER_MODE_WP with
 *   UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (collect and re-protect in one
 *   call), or synchronous write-protect faults handled by the handler thread.
 * - Copy-on-write local fork: memfd holding a snapshot, mapped MAP_PRIVATE |
 *   MAP_FIXED over a wasm memory's backing store.
 *
 * The addon is context-aware and process-global: it may be loaded by the main
 * thread and by any number of worker threads; all state is behind g_lock.
 *
 * Bitmaps exchanged with JavaScript are LSB-first: page i is bit (i & 7) of
 * byte (i >> 3).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <node_api.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uapi_compat.h"

_Static_assert(sizeof(struct pm_scan_arg) == 96, "pm_scan_arg layout");
_Static_assert(sizeof(struct page_region) == 24, "page_region layout");
_Static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg layout");

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

#define DEFAULT_RUN_PAGES 16u
#define DEFAULT_REQUEST_PAGES 1u
#define DEFAULT_ORDER_LIMIT 65536u
#define FILL_RUN_PAGES 512u /* 2 MiB per ioctl when filling a registration */
#define MSG_BATCH 64

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline bool bm_get(const uint64_t *b, uint32_t i) { return (b[i >> 6] >> (i & 63)) & 1; }
static inline void bm_set(uint64_t *b, uint32_t i) { b[i >> 6] |= 1ull << (i & 63); }
static inline void bm_clr(uint64_t *b, uint32_t i) { b[i >> 6] &= ~(1ull << (i & 63)); }
static inline size_t bm_words(uint32_t n) { return ((size_t)n + 63) / 64 + 1; }
static uint64_t *bm_alloc(uint32_t n) { return calloc(bm_words(n), sizeof(uint64_t)); }

static int write_all(int fd, const uint8_t *p, size_t n, off_t off);
static int64_t pagemap_count_present(uintptr_t start, uintptr_t end);

static const char *errname(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EUNKNOWN";
}

/* ------------------------------------------------------------------------ */
/* Global state                                                             */
/* ------------------------------------------------------------------------ */

enum { REG_MISSING = 1, REG_WP_ASYNC = 2, REG_WP_SYNC = 3 };
enum { UFFD_VIA_NONE = 0, UFFD_VIA_SYSCALL = 1, UFFD_VIA_DEV = 2, UFFD_VIA_USER_ONLY = 3 };

typedef struct Store {
  uint32_t id;
  uint32_t page_count;
  uint8_t *data; /* the memfd mapped shared, read only: read present pages only (a read of a hole would fill it with zeros) */
  size_t data_len;
  int fd;        /* the memfd: pages are written with pwrite, whole pages under the page's lock */
  bool map_pages; /* storeConfigure mapPages: registrations map the memfd, the kernel serves present pages */
  uint64_t *present;   /* page data is in `data` */
  uint64_t *zero;      /* snapshot says the page is all zero */
  uint64_t *requested; /* asked from JavaScript, not yet put */
  uint64_t *cont;      /* optional: page continues the run of page-1 */
  uint64_t *seen;      /* fault order: page already recorded */
  uint32_t present_count, zero_count;
  uint32_t run_pages, request_pages, chunk_pages;
  uint32_t *order;
  uint32_t order_len, order_cap;
  uint32_t nregs;
  uint32_t inflight; /* storePut calls copying outside the lock */
  napi_threadsafe_function tsfn;
  uint64_t tsfn_token;
  uint32_t *batch; /* pages to ask JavaScript for at the end of this handler pass */
  uint32_t batch_len, batch_cap;
  uint64_t stat_requested_pages, stat_request_calls, stat_put_pages, stat_put_calls;
  struct Store *next;
} Store;

typedef struct {
  uint32_t page;
  uint64_t t0;
} Pending;

typedef struct RegStats {
  uint64_t faults;          /* MISSING fault messages read */
  uint64_t dup_faults;      /* of which: for a page already pending or populated */
  uint64_t miss_faults;     /* of which: waited for a page not on this host */
  uint64_t copied;          /* pages copied from the store (incl. run pages) */
  uint64_t zero;            /* pages zero-filled */
  uint64_t requested;       /* pages this registration's faults asked JavaScript for */
  uint64_t wait_ns;         /* sum over faults: handler read -> resolved */
  uint64_t max_wait_ns;
  uint64_t resolved_faults; /* faults whose wait is in wait_ns */
  uint64_t first_resolved_ns; /* CLOCK_MONOTONIC when the first fault was resolved (0: none yet) */
  uint64_t wp_faults;       /* synchronous write-protect faults */
  uint64_t errors;
  int last_errno;
} RegStats;

typedef struct Reg {
  uint32_t id;
  int kind;
  int uffd;
  uintptr_t base;
  size_t len;
  uint32_t page_count;
  uint64_t env_id;
  Store *store;                /* REG_MISSING */
  uint64_t *populated;         /* REG_MISSING: pages filled by this pager */
  uint32_t populated_count;
  uint64_t *pending_bm;        /* REG_MISSING: pages with a fault waiting */
  Pending *pending;
  uint32_t npending, cap_pending;
  uint64_t *dirty;             /* REG_WP_SYNC: pages written since last collect */
  uint32_t dirty_count;
  size_t armed;                /* REG_WP_*: bytes from base write-protected so far (armDirty); collect needs all */
  size_t mapped_len;           /* REG_MISSING: bytes of the store mapped under the memory (mapPages) */
  bool gone;                   /* the memory was unmapped (freed by V8) while registered */
  bool failed;                 /* the handler thread died: its faults are served no more */
  RegStats st;
  struct Reg *next;
} Reg;

typedef struct Caps {
  bool uffd, wp, wp_async, wp_unpopulated, pagemap_scan, event_unmap, missing_shmem;
  int via;
  uint64_t features;
  char reason[320];
} Caps;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t g_ps;               /* system page size */
static Store *g_stores;
static Reg *g_regs;
static uint32_t g_next_id = 1;
static uint64_t g_next_env = 1;
static uint64_t g_next_token = 1;
static int g_epfd = -1;
static int g_evfd = -1;
static bool g_thread_started;
static int g_pagemap_fd = -1;
static uint8_t *g_zero_page;
static uint64_t g_handler_passes;

static Caps g_caps;
static pthread_once_t g_caps_once = PTHREAD_ONCE_INIT;

/* The handler thread's death (handler_died): once dead, it stays dead. */
static bool g_handler_dead;
static char g_handler_death[160]; /* why, for every error and callback */
static int g_fail_errno;          /* test hook: the errno the next epoll_wait fails with */

/* A thread's setHandlerDeathHandler callback: one per environment (thread). */
typedef struct DeathHook {
  uint64_t env_id;
  uint64_t token;
  napi_threadsafe_function tsfn;
  bool told; /* the death was handed to it */
  struct DeathHook *next;
} DeathHook;
static DeathHook *g_death_hooks;

static Store *find_store(uint32_t id) {
  for (Store *s = g_stores; s; s = s->next)
    if (s->id == id) return s;
  return NULL;
}
static Reg *find_reg(uint32_t id) {
  for (Reg *r = g_regs; r; r = r->next)
    if (r->id == id) return r;
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* userfaultfd: open and probe                                              */
/* ------------------------------------------------------------------------ */

static int uffd_open_via(int via) {
  switch (via) {
    case UFFD_VIA_SYSCALL:
      return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    case UFFD_VIA_DEV: {
      int d = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
      if (d < 0) return -1;
      int f = ioctl(d, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
      int e = errno;
      close(d);
      errno = e;
      return f;
    }
    case UFFD_VIA_USER_ONLY:
      return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  }
  errno = ENOSYS;
  return -1;
}

/* The selected value ("[never]") of a transparent huge page setting, or "" if unreadable. */
static void thp_setting(const char *path, char *out, size_t n) {
  out[0] = 0;
  char buf[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t k = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (k <= 0) return;
  buf[k] = 0;
  char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
  if (!a || !b || (size_t)(b - a) >= n) return;
  memcpy(out, a + 1, (size_t)(b - a - 1));
  out[b - a - 1] = 0;
}

/* Whether a pwrite of one page into a memfd writes one page only. With huge
 * pages for shmem (always, within_size, force), a write could allocate a
 * large folio and zero the rest of it: holes of a store would then read as
 * zeros instead of faulting to the pager, so stores are not mapped. */
static bool shmem_pages_exact(void) {
  char v[32];
  thp_setting("/sys/kernel/mm/transparent_hugepage/shmem_enabled", v, sizeof v);
  if (strcmp(v, "never") && strcmp(v, "deny") && strcmp(v, "advise") && v[0]) return false;
  static const char *const sizes[] = {"8", "16", "32", "64", "128", "256", "512", "1024", "2048"};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char path[96];
    snprintf(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/hugepages-%skB/shmem_enabled", sizes[i]);
    thp_setting(path, v, sizeof v);
    if (!strcmp(v, "always") || !strcmp(v, "within_size")) return false;
  }
  return true;
}

static void probe_caps(void) {
  g_ps = (size_t)sysconf(_SC_PAGESIZE);
  g_zero_page = mmap(NULL, g_ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_zero_page == MAP_FAILED) g_zero_page = NULL;
  g_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

  Caps *c = &g_caps;
  int errs[4] = {0};
  int fd = -1;
  for (int via = UFFD_VIA_SYSCALL; via <= UFFD_VIA_USER_ONLY; via++) {
    fd = uffd_open_via(via);
    if (fd >= 0) {
      c->via = via;
      break;
    }
    errs[via] = errno;
  }
  if (fd < 0) {
    snprintf(c->reason, sizeof c->reason,
             "userfaultfd unavailable: syscall %s, /dev/userfaultfd %s, user-mode-only %s "
             "(need root/CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)",
             errname(errs[1]), errname(errs[2]), errname(errs[3]));
  } else {
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
      snprintf(c->reason, sizeof c->reason, "UFFDIO_API failed: %s", errname(errno));
    } else {
      c->features = api.features;
      c->uffd = true;
      c->wp = (api.ioctls & (1ull << _UFFDIO_REGISTER)) != 0 && (api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
      c->wp_unpopulated = (api.features & UFFD_FEATURE_WP_UNPOPULATED) != 0;
      c->wp_async = (api.features & UFFD_FEATURE_WP_ASYNC) != 0;
      c->event_unmap = (api.features & UFFD_FEATURE_EVENT_UNMAP) != 0;
      c->missing_shmem = (api.features & UFFD_FEATURE_MISSING_SHMEM) != 0 && shmem_pages_exact();
    }
    close(fd);
  }
  if (g_pagemap_fd >= 0) {
    struct pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.start = a.end = (uintptr_t)g_zero_page;
    if (ioctl(g_pagemap_fd, PAGEMAP_SCAN, &a) >= 0) c->pagemap_scan = true;
  }
  if (c->uffd && c->via == UFFD_VIA_USER_ONLY && !c->reason[0])
    snprintf(c->reason, sizeof c->reason,
             "userfaultfd is user-mode-only here: kernel accesses to lazy memory (syscalls) fail with EFAULT");
  if (c->uffd && !c->reason[0] && !(c->wp_async && c->pagemap_scan))
    snprintf(c->reason, sizeof c->reason,
             "userfaultfd works; no WP_ASYNC/PAGEMAP_SCAN (kernel before 6.7): dirty tracking must use mode 'sync'");
}

static const Caps *caps(void) {
  pthread_once(&g_caps_once, probe_caps);
  return &g_caps;
}

/* Open a userfaultfd with the given features enabled. */
static int uffd_new(uint64_t features) {
  const Caps *c = caps();
  if (!c->uffd) {
    errno = ENOSYS;
    return -1;
  }
  int fd = uffd_open_via(c->via);
  if (fd < 0) return -1;
  struct uffdio_api api = {.api = UFFD_API, .features = features};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* ------------------------------------------------------------------------ */
/* Resolving faults (all with g_lock held)                                  */
/* ------------------------------------------------------------------------ */

static void reg_error(Reg *r, int e) {
  r->st.errors++;
  r->st.last_errno = e;
}

static void reg_wake(Reg *r, uint32_t page, uint32_t n) {
  struct uffdio_range rg = {.start = r->base + (uint64_t)page * g_ps, .len = (uint64_t)n * g_ps};
  if (ioctl(r->uffd, UFFDIO_WAKE, &rg) < 0) reg_error(r, errno);
}

static void mark_populated(Reg *r, uint32_t page, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!bm_get(r->populated, page + i)) {
      bm_set(r->populated, page + i);
      r->populated_count++;
    }
}

/* The waits of pending faults on pages of [page, page+n) that are now
 * populated end now (the fill woke their threads). */
static void resolve_pending(Reg *r, uint32_t page, uint32_t n, uint64_t now) {
  if (!r->npending) return;
  for (uint32_t i = 0; i < r->npending;) {
    Pending *p = &r->pending[i];
    if (p->page >= page && p->page < page + n && bm_get(r->populated, p->page)) {
      uint64_t w = now - p->t0;
      r->st.wait_ns += w;
      if (w > r->st.max_wait_ns) r->st.max_wait_ns = w;
      if (!r->st.resolved_faults++) r->st.first_resolved_ns = now;
      bm_clr(r->pending_bm, p->page);
      r->pending[i] = r->pending[--r->npending];
    } else {
      i++;
    }
  }
}

/*
 * UFFDIO_COPY (src != NULL) or UFFDIO_ZEROPAGE (src == NULL) of n pages at
 * `page`. Returns how many pages this call filled; pages found already
 * present (EEXIST) are marked populated and woken.
 */
static uint32_t reg_fill(Reg *r, uint32_t page, uint32_t n, const uint8_t *src) {
  uint32_t done = 0, filled = 0;
  int retries = 0;
  while (done < n) {
    uint64_t dst = r->base + (uint64_t)(page + done) * g_ps;
    uint64_t len = (uint64_t)(n - done) * g_ps;
    int rc, e;
    int64_t got;
    if (src) {
      struct uffdio_copy c = {.dst = dst, .src = (uintptr_t)(src + (size_t)done * g_ps), .len = len, .mode = 0};
      rc = ioctl(r->uffd, UFFDIO_COPY, &c);
      e = errno;
      got = c.copy;
    } else {
      struct uffdio_zeropage z = {.range = {.start = dst, .len = len}, .mode = 0};
      rc = ioctl(r->uffd, UFFDIO_ZEROPAGE, &z);
      e = errno;
      got = z.zeropage;
    }
    if (got > 0) {
      uint32_t k = (uint32_t)((uint64_t)got / g_ps);
      mark_populated(r, page + done, k);
      done += k;
      filled += k;
      if (rc == 0) break;
      continue; /* partial: go on with the rest */
    }
    if (rc == 0) break;
    if (e == EAGAIN && ++retries < 100) continue;
    if (e == EEXIST) {
      /* Something is mapped there already: count it as populated and make
       * sure nobody sleeps on it. */
      mark_populated(r, page + done, 1);
      reg_wake(r, page + done, 1);
      done++;
      continue;
    }
    if (e == ENOENT && n - done > 1) {
      /* The range crosses a VMA boundary: go page by page. */
      n = done + 1;
      continue;
    }
    reg_error(r, e);
    break;
  }
  return filled;
}

/* What the pager can do for page q of a registration now. */
enum { K_NONE = 0, K_COPY = 1, K_ZERO = 2 };
static inline int page_kind(const Reg *r, const Store *s, uint32_t q) {
  if (bm_get(r->populated, q)) return K_NONE;
  if (bm_get(s->zero, q)) return K_ZERO;
  if (bm_get(s->present, q)) return K_COPY;
  return K_NONE;
}

static uint32_t fill_run(Reg *r, Store *s, uint32_t a, uint32_t n, int kind) {
  uint32_t got = reg_fill(r, a, n, kind == K_COPY ? s->data + (size_t)a * g_ps : NULL);
  if (kind == K_COPY) r->st.copied += got;
  else r->st.zero += got;
  return got;
}

/*
 * Serve `page` of a MISSING registration from its store if the host has it
 * (or it is zero). Returns false if the page must be asked for.
 *
 * Runs: with chunkPages > 1 every page of the faulting page's chunk that the
 * host has is filled too (the faulting page's run first, so the guest wakes
 * first); otherwise up to runPages following pages, and with a continuation
 * bitmap (storeSetRuns) only while the snapshot says they belong together.
 */
static bool reg_serve(Reg *r, uint32_t page, bool write, uint64_t now_hint) {
  Store *s = r->store;
  if (bm_get(r->populated, page)) {
    reg_wake(r, page, 1);
    return true;
  }
  uint32_t limit = s->page_count < r->page_count ? s->page_count : r->page_count;
  if (page >= limit) {
    /* Past the snapshot (the clone grew its memory): zeros. */
    if (write && g_zero_page) r->st.zero += reg_fill(r, page, 1, g_zero_page);
    else r->st.zero += reg_fill(r, page, 1, NULL);
    resolve_pending(r, page, 1, now_hint ? now_hint : now_ns());
    return true;
  }
  int kind = page_kind(r, s, page);
  if (kind == K_NONE) return false;
  uint32_t a = page, b = page + 1; /* the run [a, b) that includes page */
  if (kind == K_ZERO && write && g_zero_page) {
    /* A write would fault again on the shared zero page: copy zeros. */
    r->st.zero += reg_fill(r, page, 1, g_zero_page);
  } else {
    if (s->chunk_pages > 1) {
      uint32_t cs = page - page % s->chunk_pages;
      uint32_t ce = cs + s->chunk_pages < limit ? cs + s->chunk_pages : limit;
      while (a > cs && page_kind(r, s, a - 1) == kind) a--;
      while (b < ce && page_kind(r, s, b) == kind) b++;
      fill_run(r, s, a, b - a, kind);
      /* The rest of the chunk. */
      for (uint32_t q = cs; q < ce;) {
        int k = page_kind(r, s, q);
        if (k == K_NONE) {
          q++;
          continue;
        }
        uint32_t e = q + 1;
        while (e < ce && page_kind(r, s, e) == k) e++;
        fill_run(r, s, q, e - q, k);
        q = e;
      }
      a = cs;
      b = ce;
    } else {
      while (b - a < s->run_pages && b < limit && page_kind(r, s, b) == kind && (!s->cont || bm_get(s->cont, b))) b++;
      fill_run(r, s, a, b - a, kind);
    }
  }
  resolve_pending(r, a, b - a, now_hint ? now_hint : now_ns());
  return true;
}

static void batch_push(Store *s, uint32_t page) {
  if (s->batch_len == s->batch_cap) {
    uint32_t cap = s->batch_cap ? s->batch_cap * 2 : 64;
    uint32_t *b = realloc(s->batch, cap * sizeof *b);
    if (!b) return;
    s->batch = b;
    s->batch_cap = cap;
  }
  s->batch[s->batch_len++] = page;
}

/* Ask JavaScript for `page` and the pages the snapshot wants with it: the
 * rest of its chunk (chunkPages > 1), or up to requestPages following pages
 * (and the continuation run, with storeSetRuns). Returns pages added to the
 * request batch. */
static uint32_t request_missing(Store *s, uint32_t page) {
  if (!s->tsfn) return 0; /* nobody to ask: the fault waits for storePut */
  if (page >= s->page_count || bm_get(s->requested, page)) return 0; /* already on its way */
  uint32_t added = 0;
  if (s->chunk_pages > 1) {
    uint32_t cs = page - page % s->chunk_pages;
    uint32_t ce = cs + s->chunk_pages < s->page_count ? cs + s->chunk_pages : s->page_count;
    for (uint32_t q = cs; q < ce; q++) {
      if (bm_get(s->present, q) || bm_get(s->zero, q) || bm_get(s->requested, q)) continue;
      bm_set(s->requested, q);
      batch_push(s, q);
      added++;
    }
    return added;
  }
  uint32_t limit = s->request_pages;
  if (s->cont && s->run_pages > limit) limit = s->run_pages;
  for (uint32_t i = 0; page + i < s->page_count && i < limit; i++) {
    uint32_t p = page + i;
    if (i > 0) {
      if (s->cont && !bm_get(s->cont, p) && i >= s->request_pages) break;
      if (bm_get(s->present, p) || bm_get(s->zero, p) || bm_get(s->requested, p)) break;
    }
    bm_set(s->requested, p);
    batch_push(s, p);
    added++;
  }
  return added;
}

static void record_order(Store *s, uint32_t page) {
  if (page >= s->page_count || bm_get(s->seen, page)) return;
  bm_set(s->seen, page);
  if (s->order_len >= s->order_cap) return;
  if (!s->order) {
    s->order = malloc((size_t)s->order_cap * sizeof *s->order);
    if (!s->order) return;
  }
  s->order[s->order_len++] = page;
}

static void add_pending(Reg *r, uint32_t page, uint64_t t0) {
  if (r->npending == r->cap_pending) {
    uint32_t cap = r->cap_pending ? r->cap_pending * 2 : 16;
    Pending *p = realloc(r->pending, cap * sizeof *p);
    if (!p) {
      reg_error(r, ENOMEM);
      return;
    }
    r->pending = p;
    r->cap_pending = cap;
  }
  r->pending[r->npending].page = page;
  r->pending[r->npending].t0 = t0;
  r->npending++;
  bm_set(r->pending_bm, page);
}

static void handle_missing(Reg *r, uint64_t addr, bool write) {
  uint64_t t0 = now_ns();
  uint32_t page = (uint32_t)((addr - r->base) / g_ps);
  r->st.faults++;
  if (page >= r->page_count) { /* cannot happen: outside the registered range */
    reg_error(r, ERANGE);
    return;
  }
  if (bm_get(r->pending_bm, page)) { /* another thread already waits for it */
    r->st.dup_faults++;
    return;
  }
  Store *s = r->store;
  record_order(s, page);
  if (bm_get(r->populated, page)) {
    /* Either a second thread's fault on a page just filled (the copy then
     * finds it present: EEXIST, wake) or the page was dropped since (it is
     * filled again). */
    r->st.dup_faults++;
    if (page < s->page_count && !bm_get(s->zero, page) && !bm_get(s->present, page)) {
      reg_wake(r, page, 1);
      return;
    }
    bm_clr(r->populated, page);
    r->populated_count--;
  }
  if (reg_serve(r, page, write, 0)) {
    uint64_t w = now_ns() - t0;
    r->st.wait_ns += w;
    if (w > r->st.max_wait_ns) r->st.max_wait_ns = w;
    if (!r->st.resolved_faults++) r->st.first_resolved_ns = t0 + w;
    return;
  }
  r->st.miss_faults++;
  add_pending(r, page, t0);
  r->st.requested += request_missing(s, page);
}

static void handle_wp_sync(Reg *r, uint64_t addr) {
  uint32_t page = (uint32_t)((addr - r->base) / g_ps);
  r->st.wp_faults++;
  if (page < r->page_count && !bm_get(r->dirty, page)) {
    bm_set(r->dirty, page);
    r->dirty_count++;
  }
  struct uffdio_writeprotect wp = {.range = {.start = addr, .len = g_ps}, .mode = 0};
  if (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
    reg_error(r, errno);
    reg_wake(r, page, 1);
  }
}

/* Read and handle every queued fault message of one registration. */
static void reg_gone(Reg *r);

static void drain_reg(Reg *r) {
  struct uffd_msg msgs[MSG_BATCH];
  while (r->uffd >= 0) {
    ssize_t n = read(r->uffd, msgs, sizeof msgs);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    size_t cnt = (size_t)n / sizeof msgs[0];
    for (size_t i = 0; i < cnt; i++) {
      struct uffd_msg *m = &msgs[i];
      if (m->event == UFFD_EVENT_UNMAP) {
        if (m->arg.remove.start < r->base + r->len && r->base < m->arg.remove.end) {
          reg_gone(r);
          return;
        }
        continue;
      }
      if (m->event != UFFD_EVENT_PAGEFAULT) continue;
      uint64_t addr = m->arg.pagefault.address & ~((uint64_t)g_ps - 1);
      if (addr < r->base || addr >= r->base + r->len) continue;
      if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
        if (r->kind == REG_WP_SYNC) handle_wp_sync(r, addr);
        else reg_wake(r, (uint32_t)((addr - r->base) / g_ps), 1);
      } else if (r->kind == REG_MISSING) {
        handle_missing(r, addr, (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0);
      }
    }
    if (cnt < MSG_BATCH) break;
  }
}

/*
 * The registered memory was unmapped (V8 freed the Memory without an
 * unregister): nothing can fault there any more. Close the userfaultfd,
 * detach from the store, and keep only the stats until unregister/stopTracking.
 */
static void reg_gone(Reg *r) {
  r->gone = true;
  r->npending = 0;
  if (r->uffd >= 0) {
    close(r->uffd);
    r->uffd = -1;
  }
  if (r->store) {
    r->store->nregs--;
    r->store = NULL;
  }
  free(r->populated);
  free(r->pending_bm);
  free(r->pending);
  free(r->dirty);
  r->populated = r->pending_bm = r->dirty = NULL;
  r->pending = NULL;
  r->cap_pending = 0;
}

typedef struct MissMsg {
  uint32_t store_id;
  uint32_t n;
  uint32_t pages[];
} MissMsg;

/* Hand each store's batch of missing pages to JavaScript (nonblocking). */
static void flush_batches(void) {
  for (Store *s = g_stores; s; s = s->next) {
    if (!s->batch_len) continue;
    if (s->tsfn) {
      MissMsg *m = malloc(sizeof *m + (size_t)s->batch_len * sizeof(uint32_t));
      if (m) {
        m->store_id = s->id;
        m->n = s->batch_len;
        memcpy(m->pages, s->batch, (size_t)s->batch_len * sizeof(uint32_t));
        if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok) {
          free(m);
          for (uint32_t i = 0; i < s->batch_len; i++) bm_clr(s->requested, s->batch[i]);
        } else {
          s->stat_requested_pages += s->batch_len;
          s->stat_request_calls++;
        }
      }
    } else {
      for (uint32_t i = 0; i < s->batch_len; i++) bm_clr(s->requested, s->batch[i]);
    }
    s->batch_len = 0;
  }
}

/* Hands the death to one thread's callback, once (g_lock held). */
static void death_notify_locked(DeathHook *h) {
  if (h->told || !h->tsfn) return;
  char *why = strdup(g_handler_death);
  if (!why) return;
  if (napi_call_threadsafe_function(h->tsfn, why, napi_tsfn_nonblocking) == napi_ok) h->told = true;
  else free(why);
}

/*
 * A registration whose events only the dead handler thread read (g_lock held).
 * A sync write-protect fault only delays a write: the whole range is
 * unprotected, which wakes every writer, and collectDirty refuses from now on,
 * so that a dirty set lacking pages is never used. MISSING faults are left to
 * the registration's owner (see handler_died). Async trackers need no thread
 * for writes and go on.
 */
static void reg_fail(Reg *r) {
  if (r->gone || r->kind == REG_WP_ASYNC) return;
  r->failed = true;
  if (r->kind == REG_WP_SYNC) {
    struct uffdio_writeprotect wp = {.range = {.start = r->base, .len = r->len}, .mode = 0};
    if (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) reg_error(r, errno);
  }
}

/*
 * The handler thread left its loop. It never does on purpose (it lives as long
 * as the process: there is no clean stop), so this is a death, and from now on
 * nobody reads fault messages. Every registration that needed the thread is
 * marked failed, every thread's death callback is called, and registrations
 * are refused from now on (refuse_dead_locked). A new handler thread is not
 * started: whatever broke this one (its epoll set, fds closed under it, memory)
 * is unknown and likely to break the next, and a host that loses every lazy
 * clone at each death while looking healthy is worse than one that says it
 * cannot page any more. Nothing is zero-filled here: a guest asleep in a
 * fault sleeps until its owner ends it (zeroFillPending, then terminate),
 * because a zero page read by a clone that goes on is silent data loss.
 */
static void handler_died(int e, bool injected) {
  pthread_mutex_lock(&g_lock);
  g_handler_dead = true;
  snprintf(g_handler_death, sizeof g_handler_death, "epoll_wait failed: %s (%s)%s", errname(e), strerror(e),
           injected ? ", injected by debugFailHandler" : "");
  for (Reg *r = g_regs; r; r = r->next) reg_fail(r);
  for (DeathHook *h = g_death_hooks; h; h = h->next) death_notify_locked(h);
  pthread_mutex_unlock(&g_lock);
}

static void *handler_main(void *arg) {
  (void)arg;
  struct epoll_event evs[64];
  int failed = 0;
  bool injected = false;
  while (!failed) {
    int n = epoll_wait(g_epfd, evs, 64, -1);
    int fake = __atomic_exchange_n(&g_fail_errno, 0, __ATOMIC_ACQ_REL);
    if (fake) { /* debugFailHandler: fail as epoll_wait would */
      n = -1;
      errno = fake;
      injected = true;
    }
    if (n < 0) {
      if (errno != EINTR) failed = errno;
      continue;
    }
    pthread_mutex_lock(&g_lock);
    g_handler_passes++;
    for (int i = 0; i < n; i++) {
      uint64_t id = evs[i].data.u64;
      if (id == 0) {
        uint64_t v;
        if (read(g_evfd, &v, sizeof v) < 0) { /* nothing */ }
        continue;
      }
      Reg *r = find_reg((uint32_t)id);
      if (r) drain_reg(r);
    }
    flush_batches();
    pthread_mutex_unlock(&g_lock);
  }
  handler_died(failed, injected);
  return NULL;
}

/* With g_lock held. */
static int ensure_thread(void) {
  if (g_thread_started) return 0;
  if (g_epfd < 0) {
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) return -1;
    g_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g_evfd >= 0) {
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
      epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_evfd, &ev);
    }
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with Node's threads */
  pthread_t t;
  int rc = pthread_create(&t, &attr, handler_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  pthread_setname_np(t, "flurry-pager");
  g_thread_started = true;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* N-API helpers                                                            */
/* ------------------------------------------------------------------------ */

#define NAPI_CALL(env, call)                                                  \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      bool pending_ = false;                                                  \
      napi_is_exception_pending((env), &pending_);                            \
      if (!pending_) napi_throw_error((env), "ERR_FLURRY_PAGER", "N-API call failed: " #call); \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

#define GET_ARGS(n)                                                           \
  size_t argc = (n);                                                          \
  napi_value argv[(n) > 0 ? (n) : 1];                                         \
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));       \
  for (size_t i_ = argc; i_ < (n); i_++) napi_get_undefined(env, &argv[i_]);

static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static napi_value throw_code(napi_env env, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  return throw_code(env, errname(e), "%s: %s: %s", what, errname(e), strerror(e));
}

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return true;
  return t == napi_undefined || t == napi_null;
}

static bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != (double)(uint64_t)d) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "%s must be a non-negative integer below 2^32", name);
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

static bool get_size(napi_env env, napi_value v, const char *name, uint64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 9007199254740991.0) || d != (double)(uint64_t)d) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "%s must be a non-negative safe integer", name);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *name, bool dflt) {
  if (is_nullish(env, obj)) return dflt;
  napi_valuetype t;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return dflt;
  napi_value v;
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || is_nullish(env, v)) return dflt;
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

/* A byte range from a WebAssembly.Memory, ArrayBuffer, SharedArrayBuffer or
 * ArrayBufferView. Returns false with an exception pending. */
static bool get_bytes(napi_env env, napi_value v, uint8_t **ptr, size_t *len, int depth) {
  bool is = false;
  void *data = NULL;
  size_t n = 0;
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &data, &n) != napi_ok) goto bad;
    *ptr = data;
    *len = n;
    return true;
  }
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type tt;
    size_t elems, off;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &tt, &elems, &data, &ab, &off) != napi_ok) goto bad;
    size_t esz = 1;
    switch (tt) {
      case napi_int16_array: case napi_uint16_array: esz = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: esz = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: esz = 8; break;
      default: esz = 1;
    }
    *ptr = data;
    *len = elems * esz;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t off;
    if (napi_get_dataview_info(env, v, &n, &data, &ab, &off) != napi_ok) goto bad;
    *ptr = data;
    *len = n;
    return true;
  }
  napi_valuetype t;
  if (depth < 2 && napi_typeof(env, v, &t) == napi_ok && t == napi_object) {
    bool has = false;
    /* WebAssembly.Memory: its current buffer (replaced on grow, same base). */
    if (napi_has_named_property(env, v, "grow", &has) == napi_ok && has &&
        napi_has_named_property(env, v, "buffer", &has) == napi_ok && has) {
      napi_value buf;
      if (napi_get_named_property(env, v, "buffer", &buf) != napi_ok) goto bad;
      return get_bytes(env, buf, ptr, len, depth + 1);
    }
    /* SharedArrayBuffer: N-API refuses it; look through a Uint8Array view. */
    napi_value global, ctor, view;
    if (napi_get_global(env, &global) == napi_ok &&
        napi_get_named_property(env, global, "Uint8Array", &ctor) == napi_ok &&
        napi_new_instance(env, ctor, 1, &v, &view) == napi_ok)
      return get_bytes(env, view, ptr, len, depth + 1);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ex;
      napi_get_and_clear_last_exception(env, &ex);
    }
  }
bad:
  throw_code(env, "ERR_INVALID_ARG_TYPE",
             "expected a WebAssembly.Memory, ArrayBuffer, SharedArrayBuffer or ArrayBufferView");
  return false;
}

/* Guest memory: page-aligned, non-empty. */
static bool get_memory(napi_env env, napi_value v, uintptr_t *base, size_t *len) {
  uint8_t *p;
  size_t n;
  if (!get_bytes(env, v, &p, &n, 0)) return false;
  if (!p) {
    throw_code(env, "ERR_FLURRY_EMPTY_MEMORY", "memory has no backing store address (zero length?): grow it first");
    return false;
  }
  if (((uintptr_t)p & (g_ps - 1)) != 0) {
    throw_code(env, "ERR_FLURRY_UNALIGNED", "memory backing store is not page aligned");
    return false;
  }
  *base = (uintptr_t)p;
  *len = n;
  return true;
}

static napi_value make_u32_array(napi_env env, const uint32_t *vals, size_t n) {
  void *data;
  napi_value ab, arr;
  NAPI_CALL(env, napi_create_arraybuffer(env, n * 4, &data, &ab));
  if (n) memcpy(data, vals, n * 4);
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &arr));
  return arr;
}

static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}
static void set_bool(napi_env env, napi_value obj, const char *name, bool v) {
  napi_value x;
  napi_get_boolean(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}
static void set_str(napi_env env, napi_value obj, const char *name, const char *v) {
  napi_value x;
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &x);
  napi_set_named_property(env, obj, name, x);
}

/* Per-environment data: registrations belong to the environment (thread) that
 * made them and are closed when it is torn down. */
typedef struct EnvData {
  uint64_t env_id;
} EnvData;

static uint64_t env_id_of(napi_env env) {
  EnvData *d = NULL;
  if (napi_get_instance_data(env, (void **)&d) != napi_ok || !d) return 0;
  return d->env_id;
}

/* ------------------------------------------------------------------------ */
/* capabilities()                                                           */
/* ------------------------------------------------------------------------ */

static napi_value js_capabilities(napi_env env, napi_callback_info info) {
  const Caps *c = caps();
  napi_value o;
  NAPI_CALL(env, napi_create_object(env, &o));
  set_bool(env, o, "userfaultfd", c->uffd);
  set_bool(env, o, "writeProtect", c->wp);
  set_bool(env, o, "wpAsync", c->wp_async);
  set_bool(env, o, "wpUnpopulated", c->wp_unpopulated);
  set_bool(env, o, "pagemapScan", c->pagemap_scan);
  set_bool(env, o, "missingShmem", c->missing_shmem);
  set_bool(env, o, "memfd", true);
  set_num(env, o, "pageSize", (double)g_ps);
  set_str(env, o, "via", c->via == UFFD_VIA_SYSCALL ? "syscall"
                         : c->via == UFFD_VIA_DEV  ? "dev"
                         : c->via == UFFD_VIA_USER_ONLY ? "user-mode-only"
                                                        : "none");
  char hex[32];
  snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)c->features);
  set_str(env, o, "features", hex);
  if (c->reason[0]) set_str(env, o, "reason", c->reason);
  return o;
}

/* ------------------------------------------------------------------------ */
/* Page stores                                                              */
/* ------------------------------------------------------------------------ */

static void store_free(Store *s) {
  if (s->data && s->data != MAP_FAILED) munmap(s->data, s->data_len);
  if (s->fd >= 0) close(s->fd);
  free(s->present);
  free(s->zero);
  free(s->requested);
  free(s->cont);
  free(s->seen);
  free(s->order);
  free(s->batch);
  free(s);
}

/* createStore(pageCount, pageSize = 4096) -> storeId */
static napi_value js_createStore(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  caps();
  uint32_t pages, ps = (uint32_t)g_ps;
  if (!get_u32(env, argv[0], "pageCount", &pages)) return NULL;
  if (!is_nullish(env, argv[1]) && !get_u32(env, argv[1], "pageSize", &ps)) return NULL;
  if (ps != g_ps) return throw_code(env, "ERR_FLURRY_PAGE_SIZE", "pageSize must be the system page size %zu", g_ps);
  if (pages == 0) return throw_code(env, "ERR_OUT_OF_RANGE", "pageCount must be at least 1");
  Store *s = calloc(1, sizeof *s);
  if (!s) return throw_errno(env, "createStore", ENOMEM);
  s->page_count = pages;
  s->data_len = (size_t)pages * g_ps;
  s->fd = memfd_create("flurry-store", MFD_CLOEXEC);
  s->data = MAP_FAILED;
  if (s->fd >= 0 && ftruncate(s->fd, (off_t)s->data_len) == 0)
    s->data = mmap(NULL, s->data_len, PROT_READ, MAP_SHARED | MAP_NORESERVE, s->fd, 0);
  s->present = bm_alloc(pages);
  s->zero = bm_alloc(pages);
  s->requested = bm_alloc(pages);
  s->seen = bm_alloc(pages);
  s->run_pages = DEFAULT_RUN_PAGES;
  s->request_pages = DEFAULT_REQUEST_PAGES;
  s->order_cap = DEFAULT_ORDER_LIMIT;
  if (s->data == MAP_FAILED || !s->present || !s->zero || !s->requested || !s->seen) {
    int e = s->data == MAP_FAILED ? errno : ENOMEM;
    if (s->fd < 0) s->data = NULL;
    store_free(s);
    return throw_errno(env, "createStore", e);
  }
  pthread_mutex_lock(&g_lock);
  s->id = g_next_id++;
  s->next = g_stores;
  g_stores = s;
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, s->id, &out));
  return out;
}

#define LOCKED_STORE(idval)                                                              \
  pthread_mutex_lock(&g_lock);                                                           \
  Store *s = find_store(idval);                                                          \
  if (!s) {                                                                              \
    pthread_mutex_unlock(&g_lock);                                                       \
    return throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "unknown store %u", (unsigned)(idval)); \
  }

/* storeConfigure(storeId, { runPages?, requestPages?, chunkPages?, faultOrderLimit?, mapPages? }) */
static napi_value js_storeConfigure(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  uint32_t run = 0, req = 0, ord = 0, chunk = 0;
  bool has_run = false, has_req = false, has_ord = false, has_chunk = false, has_map = false, map = false;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) == napi_ok && t == napi_object) {
    napi_value v;
    bool has;
    if (napi_has_named_property(env, argv[1], "mapPages", &has) == napi_ok && has) {
      napi_get_named_property(env, argv[1], "mapPages", &v);
      if (!is_nullish(env, v)) {
        if (napi_get_value_bool(env, v, &map) != napi_ok) return throw_code(env, "ERR_INVALID_ARG_TYPE", "mapPages must be a boolean");
        has_map = true;
      }
    }
    if (napi_has_named_property(env, argv[1], "runPages", &has) == napi_ok && has) {
      napi_get_named_property(env, argv[1], "runPages", &v);
      if (!is_nullish(env, v)) {
        if (!get_u32(env, v, "runPages", &run)) return NULL;
        has_run = true;
      }
    }
    if (napi_has_named_property(env, argv[1], "requestPages", &has) == napi_ok && has) {
      napi_get_named_property(env, argv[1], "requestPages", &v);
      if (!is_nullish(env, v)) {
        if (!get_u32(env, v, "requestPages", &req)) return NULL;
        has_req = true;
      }
    }
    if (napi_has_named_property(env, argv[1], "chunkPages", &has) == napi_ok && has) {
      napi_get_named_property(env, argv[1], "chunkPages", &v);
      if (!is_nullish(env, v)) {
        if (!get_u32(env, v, "chunkPages", &chunk)) return NULL;
        has_chunk = true;
      }
    }
    if (napi_has_named_property(env, argv[1], "faultOrderLimit", &has) == napi_ok && has) {
      napi_get_named_property(env, argv[1], "faultOrderLimit", &v);
      if (!is_nullish(env, v)) {
        if (!get_u32(env, v, "faultOrderLimit", &ord)) return NULL;
        has_ord = true;
      }
    }
  }
  LOCKED_STORE(id);
  if (has_run) s->run_pages = run < 1 ? 1 : run > 4096 ? 4096 : run;
  if (has_req) s->request_pages = req < 1 ? 1 : req > 4096 ? 4096 : req;
  if (has_chunk) s->chunk_pages = chunk <= 1 ? 0 : chunk > 4096 ? 4096 : chunk;
  /* Registrations made before keep how they were made. */
  if (has_map) s->map_pages = map && caps()->missing_shmem;
  if (has_ord && ord != s->order_cap) {
    if (ord < s->order_len) s->order_len = ord;
    if (s->order) {
      uint32_t *o = realloc(s->order, (size_t)(ord ? ord : 1) * sizeof *o);
      if (o) s->order = o;
    }
    s->order_cap = ord;
  }
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

/* Serve every fault waiting in a registration of `s` on pages in [first, first+n). */
static void serve_waiters(Store *s, uint32_t first, uint32_t n) {
  uint64_t now = now_ns();
  for (Reg *r = g_regs; r; r = r->next) {
    if (r->store != s || !r->npending) continue;
    /* Collect first: reg_serve edits the pending array. */
    uint32_t k = 0;
    uint32_t *todo = malloc((size_t)r->npending * sizeof *todo);
    if (!todo) continue;
    for (uint32_t i = 0; i < r->npending; i++)
      if (r->pending[i].page >= first && r->pending[i].page < first + n) todo[k++] = r->pending[i].page;
    for (uint32_t i = 0; i < k; i++)
      if (bm_get(r->pending_bm, todo[i])) reg_serve(r, todo[i], false, now);
    free(todo);
  }
}

/* storePut(storeId, firstPage, bytes) -> pages newly stored */
static napi_value js_storePut(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uint32_t id, first;
  if (!get_u32(env, argv[0], "storeId", &id) || !get_u32(env, argv[1], "firstPage", &first)) return NULL;
  uint8_t *bytes;
  size_t len;
  if (!get_bytes(env, argv[2], &bytes, &len, 0)) return NULL;
  if (len % g_ps != 0) return throw_code(env, "ERR_OUT_OF_RANGE", "bytes must be a whole number of pages");
  uint32_t n = (uint32_t)(len / g_ps);
  pthread_mutex_lock(&g_lock);
  Store *s = find_store(id);
  if (!s) {
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "unknown store %u", id);
  }
  if ((uint64_t)first + n > s->page_count) {
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_OUT_OF_RANGE", "pages %u..%u outside store of %u pages", first, first + n, s->page_count);
  }
  /* Copy the bytes in without the lock: `bytes` might even be memory that
   * faults, and the handler must not wait on a memcpy. Only pages not yet
   * present are written, and nothing reads a page before it is present;
   * two puts of the same page write the same snapshot bytes. */
  s->inflight++;
  uint64_t *was = malloc(bm_words(n) * sizeof(uint64_t));
  if (was) {
    memset(was, 0, bm_words(n) * sizeof(uint64_t));
    for (uint32_t i = 0; i < n; i++)
      if (bm_get(s->present, first + i)) bm_set(was, i);
  }
  int fd = s->fd;
  pthread_mutex_unlock(&g_lock);
  /* pwrite, never a store through a shared mapping: the kernel fills a page
   * under its lock and only then makes it visible, so a clone faulting on it
   * meanwhile waits for the whole page instead of mapping a half-written one. */
  int werr = 0;
  for (uint32_t i = 0; i < n && !werr;) {
    if (was && bm_get(was, i)) {
      i++;
      continue;
    }
    uint32_t k = 1;
    while (i + k < n && !(was && bm_get(was, i + k))) k++;
    if (write_all(fd, bytes + (size_t)i * g_ps, (size_t)k * g_ps, (off_t)(first + i) * (off_t)g_ps) < 0) werr = errno;
    i += k;
  }
  pthread_mutex_lock(&g_lock);
  if (werr) {
    s->inflight--;
    pthread_mutex_unlock(&g_lock);
    free(was);
    return throw_errno(env, "storePut (pwrite)", werr);
  }
  s->inflight--;
  uint32_t added = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t p = first + i;
    if (bm_get(s->present, p) || (was && bm_get(was, i))) continue;
    bm_set(s->present, p);
    bm_clr(s->requested, p);
    s->present_count++;
    added++;
  }
  free(was);
  s->stat_put_pages += added;
  s->stat_put_calls++;
  if (added) serve_waiters(s, first, n);
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, added, &out));
  return out;
}

/* Read an LSB-first bitmap argument into a store bitmap (OR). */
static bool bitmap_arg(napi_env env, napi_value v, uint8_t **bits, size_t *len) {
  return get_bytes(env, v, bits, len, 0);
}

/* storeMarkZero(storeId, zeroBitmap) -> zero pages now known */
static napi_value js_storeMarkZero(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  uint8_t *bits;
  size_t blen;
  if (!bitmap_arg(env, argv[1], &bits, &blen)) return NULL;
  LOCKED_STORE(id);
  uint32_t pages = s->page_count;
  uint32_t newly[1] = {0};
  for (uint32_t p = 0; p < pages && (p >> 3) < blen; p++) {
    if (((bits[p >> 3] >> (p & 7)) & 1) && !bm_get(s->zero, p)) {
      bm_set(s->zero, p);
      bm_clr(s->requested, p);
      s->zero_count++;
      newly[0]++;
    }
  }
  /* Faults may be waiting on pages just learned to be zero. */
  if (newly[0]) {
    for (Reg *r = g_regs; r; r = r->next) {
      if (r->store != s || !r->npending) continue;
      uint32_t k = 0;
      uint32_t *todo = malloc((size_t)r->npending * sizeof *todo);
      if (!todo) continue;
      for (uint32_t i = 0; i < r->npending; i++)
        if (bm_get(s->zero, r->pending[i].page)) todo[k++] = r->pending[i].page;
      for (uint32_t i = 0; i < k; i++)
        if (bm_get(r->pending_bm, todo[i])) reg_serve(r, todo[i], false, 0);
      free(todo);
    }
  }
  uint32_t total = s->zero_count;
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, total, &out));
  return out;
}

/* storeSetRuns(storeId, continuationBitmap | null): bit p set = page p is
 * wanted together with page p-1 (copy and request them as one run). */
static napi_value js_storeSetRuns(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  uint8_t *bits = NULL;
  size_t blen = 0;
  bool clear = is_nullish(env, argv[1]);
  if (!clear && !bitmap_arg(env, argv[1], &bits, &blen)) return NULL;
  LOCKED_STORE(id);
  if (clear) {
    free(s->cont);
    s->cont = NULL;
  } else {
    uint64_t *c = s->cont ? s->cont : bm_alloc(s->page_count);
    if (!c) {
      pthread_mutex_unlock(&g_lock);
      return throw_errno(env, "storeSetRuns", ENOMEM);
    }
    memset(c, 0, bm_words(s->page_count) * sizeof(uint64_t));
    for (uint32_t p = 0; p < s->page_count && (p >> 3) < blen; p++)
      if ((bits[p >> 3] >> (p & 7)) & 1) bm_set(c, p);
    s->cont = c;
  }
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

/* storeHas(storeId, page) -> 'present' | 'zero' | 'requested' | false */
static napi_value js_storeHas(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t id, page;
  if (!get_u32(env, argv[0], "storeId", &id) || !get_u32(env, argv[1], "page", &page)) return NULL;
  LOCKED_STORE(id);
  const char *what = NULL;
  if (page < s->page_count) {
    if (bm_get(s->present, page)) what = "present";
    else if (bm_get(s->zero, page)) what = "zero";
    else if (bm_get(s->requested, page)) what = "requested";
  }
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  if (what) NAPI_CALL(env, napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &out));
  else NAPI_CALL(env, napi_get_boolean(env, false, &out));
  return out;
}

static uint32_t store_waiting_pages(Store *s, uint32_t **out) {
  uint64_t *bm = bm_alloc(s->page_count);
  uint32_t n = 0;
  *out = NULL;
  if (!bm) return 0;
  for (Reg *r = g_regs; r; r = r->next) {
    if (r->store != s) continue;
    for (uint32_t i = 0; i < r->npending; i++) {
      uint32_t p = r->pending[i].page;
      if (p < s->page_count && !bm_get(bm, p)) {
        bm_set(bm, p);
        n++;
      }
    }
  }
  uint32_t *pages = malloc(((size_t)n + 1) * sizeof *pages);
  uint32_t k = 0;
  if (pages)
    for (uint32_t p = 0; p < s->page_count && k < n; p++)
      if (bm_get(bm, p)) pages[k++] = p;
  free(bm);
  *out = pages;
  return pages ? k : 0;
}

/* storeStats(storeId) */
static napi_value js_storeStats(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  LOCKED_STORE(id);
  uint32_t requested = 0;
  for (size_t w = 0; w < bm_words(s->page_count); w++) requested += (uint32_t)__builtin_popcountll(s->requested[w]);
  uint32_t waiting_faults = 0;
  for (Reg *r = g_regs; r; r = r->next)
    if (r->store == s) waiting_faults += r->npending;
  uint32_t *wp;
  uint32_t waiting_pages = store_waiting_pages(s, &wp);
  free(wp);
  double vals[] = {s->page_count, s->present_count, s->zero_count, requested, waiting_pages, waiting_faults,
                   s->nregs, s->run_pages, s->request_pages, s->chunk_pages, s->order_len, (double)s->stat_requested_pages,
                   (double)s->stat_request_calls, (double)s->stat_put_pages, (double)s->stat_put_calls};
  bool handler = s->tsfn != NULL;
  pthread_mutex_unlock(&g_lock);
  static const char *names[] = {"pageCount", "present", "zero", "requested", "waitingPages", "waitingFaults",
                                "registrations", "runPages", "requestPages", "chunkPages", "faultOrderLength",
                                "requestedPages", "requestCalls", "putPages", "putCalls"};
  napi_value o;
  NAPI_CALL(env, napi_create_object(env, &o));
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) set_num(env, o, names[i], vals[i]);
  set_num(env, o, "bytes", (double)vals[1] * (double)g_ps);
  set_bool(env, o, "missHandler", handler);
  return o;
}

/* storeWaiting(storeId) -> Uint32Array of pages some fault waits for */
static napi_value js_storeWaiting(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  LOCKED_STORE(id);
  uint32_t *pages;
  uint32_t n = store_waiting_pages(s, &pages);
  pthread_mutex_unlock(&g_lock);
  napi_value out = make_u32_array(env, pages, n);
  free(pages);
  return out;
}

/* storeForgetRequests(storeId): clear the "requested" marks so that the next
 * fault on those pages asks JavaScript again (after a lost request). */
static napi_value js_storeForgetRequests(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  LOCKED_STORE(id);
  memset(s->requested, 0, bm_words(s->page_count) * sizeof(uint64_t));
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

/* storeRead(storeId, firstPage, count) -> Uint8Array copy, or null if a page
 * is neither present nor zero. For serving cached pages to other hosts. */
static napi_value js_storeRead(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uint32_t id, first, count;
  if (!get_u32(env, argv[0], "storeId", &id) || !get_u32(env, argv[1], "firstPage", &first) ||
      !get_u32(env, argv[2], "count", &count))
    return NULL;
  if (count > (1u << 20)) return throw_code(env, "ERR_OUT_OF_RANGE", "count too large");
  void *data;
  napi_value ab, arr, nul;
  napi_get_null(env, &nul);
  NAPI_CALL(env, napi_create_arraybuffer(env, (size_t)count * g_ps, &data, &ab));
  pthread_mutex_lock(&g_lock);
  Store *s = find_store(id);
  if (!s || (uint64_t)first + count > s->page_count) {
    pthread_mutex_unlock(&g_lock);
    return s ? throw_code(env, "ERR_OUT_OF_RANGE", "pages outside store")
             : throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "unknown store %u", id);
  }
  for (uint32_t i = 0; i < count; i++) {
    uint32_t p = first + i;
    if (bm_get(s->present, p)) memcpy((uint8_t *)data + (size_t)i * g_ps, s->data + (size_t)p * g_ps, g_ps);
    else if (bm_get(s->zero, p)) memset((uint8_t *)data + (size_t)i * g_ps, 0, g_ps);
    else {
      pthread_mutex_unlock(&g_lock);
      return nul;
    }
  }
  pthread_mutex_unlock(&g_lock);
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, (size_t)count * g_ps, ab, 0, &arr));
  return arr;
}

/* storeFaultOrder(storeId) -> Uint32Array: first distinct pages faulted */
static napi_value js_storeFaultOrder(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  LOCKED_STORE(id);
  uint32_t n = s->order_len;
  uint32_t *copy = malloc(((size_t)n + 1) * 4);
  if (copy && n) memcpy(copy, s->order, (size_t)n * 4);
  pthread_mutex_unlock(&g_lock);
  if (!copy) return throw_errno(env, "storeFaultOrder", ENOMEM);
  napi_value out = make_u32_array(env, copy, n);
  free(copy);
  return out;
}

/* dropStore(storeId): refuses (ERR_FLURRY_BUSY) while registrations use it. */
static napi_value js_dropStore(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  pthread_mutex_lock(&g_lock);
  Store **pp = &g_stores;
  while (*pp && (*pp)->id != id) pp = &(*pp)->next;
  Store *s = *pp;
  if (!s) {
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "unknown store %u", id);
  }
  if (s->nregs || s->inflight) {
    uint32_t n = s->nregs;
    pthread_mutex_unlock(&g_lock);
    if (!n) return throw_code(env, "ERR_FLURRY_BUSY", "store %u is being written by another thread", id);
    return throw_code(env, "ERR_FLURRY_BUSY", "store %u is used by %u registration(s)", id, n);
  }
  *pp = s->next;
  napi_threadsafe_function t = s->tsfn;
  s->tsfn = NULL;
  pthread_mutex_unlock(&g_lock);
  if (t) napi_release_threadsafe_function(t, napi_tsfn_release);
  store_free(s);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Miss path to JavaScript                                                  */
/* ------------------------------------------------------------------------ */

static void miss_call_js(napi_env env, napi_value cb, void *context, void *data) {
  MissMsg *m = data;
  if (env && cb && m) {
    napi_value arr, undef;
    if (napi_create_array_with_length(env, m->n, &arr) == napi_ok) {
      for (uint32_t i = 0; i < m->n; i++) {
        napi_value v;
        napi_create_uint32(env, m->pages[i], &v);
        napi_set_element(env, arr, i, v);
      }
      napi_get_undefined(env, &undef);
      if (napi_call_function(env, undef, cb, 1, &arr, NULL) == napi_pending_exception) {
        napi_value ex;
        if (napi_get_and_clear_last_exception(env, &ex) == napi_ok) napi_fatal_exception(env, ex);
      }
    }
  }
  free(m);
}

static void tsfn_finalize(napi_env env, void *finalize_data, void *hint) {
  uint64_t token = (uint64_t)(uintptr_t)finalize_data;
  pthread_mutex_lock(&g_lock);
  for (Store *s = g_stores; s; s = s->next)
    if (s->tsfn && s->tsfn_token == token) {
      s->tsfn = NULL;
      s->tsfn_token = 0;
    }
  pthread_mutex_unlock(&g_lock);
}

/* setMissHandler(storeId, callback(pages: number[]) | null). Call it from the
 * thread that will fetch pages (the host's main thread): the callback runs
 * there. That thread must never touch lazy guest memory. */
static napi_value js_setMissHandler(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t id;
  if (!get_u32(env, argv[0], "storeId", &id)) return NULL;
  bool clear = is_nullish(env, argv[1]);
  if (!clear) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[1], &t));
    if (t != napi_function) return throw_code(env, "ERR_INVALID_ARG_TYPE", "callback must be a function or null");
  }
  pthread_mutex_lock(&g_lock);
  Store *s = find_store(id);
  if (!s) {
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "unknown store %u", id);
  }
  napi_threadsafe_function old = s->tsfn;
  s->tsfn = NULL;
  s->tsfn_token = 0;
  uint64_t token = g_next_token++;
  pthread_mutex_unlock(&g_lock);
  if (old) napi_release_threadsafe_function(old, napi_tsfn_release);
  if (clear) return NULL;

  napi_value name;
  napi_threadsafe_function tsfn;
  NAPI_CALL(env, napi_create_string_utf8(env, "flurry-pager-miss", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, (void *)(uintptr_t)token,
                                                 tsfn_finalize, NULL, miss_call_js, &tsfn));
  napi_unref_threadsafe_function(env, tsfn); /* does not keep the loop alive */
  pthread_mutex_lock(&g_lock);
  s = find_store(id);
  if (s) {
    s->tsfn = tsfn;
    s->tsfn_token = token;
    /* Faults that arrived without a handler: ask now. */
    for (Reg *r = g_regs; r; r = r->next)
      if (r->store == s)
        for (uint32_t i = 0; i < r->npending; i++) r->st.requested += request_missing(s, r->pending[i].page);
    flush_batches();
  }
  pthread_mutex_unlock(&g_lock);
  if (!s) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_release);
    return throw_code(env, "ERR_FLURRY_UNKNOWN_STORE", "store %u was dropped", id);
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Handler thread death, to JavaScript                                      */
/* ------------------------------------------------------------------------ */

static void death_call_js(napi_env env, napi_value cb, void *context, void *data) {
  char *why = data;
  if (env && cb && why) {
    napi_value arg, undef;
    if (napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &arg) == napi_ok) {
      napi_get_undefined(env, &undef);
      if (napi_call_function(env, undef, cb, 1, &arg, NULL) == napi_pending_exception) {
        napi_value ex;
        if (napi_get_and_clear_last_exception(env, &ex) == napi_ok) napi_fatal_exception(env, ex);
      }
    }
  }
  free(why);
}

/* Unlinks and frees the hook with `token` (g_lock held); returns its tsfn. */
static napi_threadsafe_function death_hook_remove_locked(uint64_t token) {
  for (DeathHook **pp = &g_death_hooks; *pp; pp = &(*pp)->next)
    if ((*pp)->token == token) {
      DeathHook *h = *pp;
      napi_threadsafe_function t = h->tsfn;
      *pp = h->next;
      free(h);
      return t;
    }
  return NULL;
}

static void death_tsfn_finalize(napi_env env, void *finalize_data, void *hint) {
  pthread_mutex_lock(&g_lock);
  death_hook_remove_locked((uint64_t)(uintptr_t)finalize_data);
  pthread_mutex_unlock(&g_lock);
}

/* setHandlerDeathHandler(callback(reason: string) | null): this thread's
 * callback for the handler thread's death, called once on this thread (right
 * away if it is already dead). One per thread; a second replaces the first. */
static napi_value js_setHandlerDeathHandler(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  bool clear = is_nullish(env, argv[0]);
  if (!clear) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[0], &t));
    if (t != napi_function) return throw_code(env, "ERR_INVALID_ARG_TYPE", "callback must be a function or null");
  }
  uint64_t env_id = env_id_of(env);
  pthread_mutex_lock(&g_lock);
  napi_threadsafe_function old = NULL;
  for (DeathHook *h = g_death_hooks; h; h = h->next)
    if (h->env_id == env_id) {
      old = death_hook_remove_locked(h->token);
      break;
    }
  uint64_t token = g_next_token++;
  pthread_mutex_unlock(&g_lock);
  if (old) napi_release_threadsafe_function(old, napi_tsfn_release);
  if (clear) return NULL;

  DeathHook *h = calloc(1, sizeof *h);
  if (!h) return throw_errno(env, "setHandlerDeathHandler", ENOMEM);
  napi_value name;
  if (napi_create_string_utf8(env, "flurry-pager-death", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, (void *)(uintptr_t)token, death_tsfn_finalize,
                                      NULL, death_call_js, &h->tsfn) != napi_ok) {
    free(h);
    return throw_code(env, "ERR_FLURRY_PAGER", "setHandlerDeathHandler: cannot create a thread-safe function");
  }
  napi_unref_threadsafe_function(env, h->tsfn); /* does not keep the loop alive */
  h->env_id = env_id;
  h->token = token;
  pthread_mutex_lock(&g_lock);
  h->next = g_death_hooks;
  g_death_hooks = h;
  if (g_handler_dead) death_notify_locked(h);
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

/* debugFailHandler(errnoName): TEST HOOK, never for production use. Makes the
 * handler thread's next epoll_wait fail with that errno, so that it dies
 * through the same path as a real failure (the reason says it was injected). */
static napi_value js_debugFailHandler(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char name[32];
  size_t nl;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nl) != napi_ok)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "errnoName must be a string such as 'EBADF'");
  int e = 0;
  for (int i = 1; i < 4096 && !e; i++) {
    const char *n = strerrorname_np(i);
    if (n && strcmp(n, name) == 0) e = i;
  }
  if (!e || e == EINTR) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s is not an errno that fails epoll_wait", name);
  pthread_mutex_lock(&g_lock);
  bool running = g_thread_started && !g_handler_dead && g_evfd >= 0;
  if (running) __atomic_store_n(&g_fail_errno, e, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_lock);
  if (!running) return throw_code(env, "ERR_FLURRY_NO_HANDLER", "no handler thread runs (none started yet, or it died)");
  uint64_t one = 1;
  if (write(g_evfd, &one, sizeof one) < 0) return throw_errno(env, "debugFailHandler: eventfd write", errno);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Registrations                                                            */
/* ------------------------------------------------------------------------ */

static bool overlaps_locked(uintptr_t base, size_t len) {
  for (Reg *r = g_regs; r; r = r->next)
    if (!r->gone && base < r->base + r->len && r->base < base + len) return true;
  return false;
}

static void reg_free(Reg *r) {
  if (r->uffd >= 0) close(r->uffd); /* also drops it from the epoll set */
  free(r->populated);
  free(r->pending_bm);
  free(r->pending);
  free(r->dirty);
  free(r);
}

/* Unlink with g_lock held. */
static void reg_unlink(Reg *r) {
  Reg **pp = &g_regs;
  while (*pp && *pp != r) pp = &(*pp)->next;
  if (*pp) *pp = r->next;
  if (r->store) r->store->nregs--;
}

static bool get_max_bytes(napi_env env, napi_value v, size_t cur, uint64_t *max) {
  if (!get_size(env, v, "maximumBytes", max)) return false;
  if (*max == 0 || *max % g_ps != 0) {
    throw_code(env, "ERR_OUT_OF_RANGE", "maximumBytes must be a positive multiple of %zu", g_ps);
    return false;
  }
  if (*max < cur) {
    throw_code(env, "ERR_OUT_OF_RANGE", "maximumBytes %llu is below the memory's current size %zu",
               (unsigned long long)*max, cur);
    return false;
  }
  if (*max / g_ps > 0xffffffffull) {
    throw_code(env, "ERR_OUT_OF_RANGE", "maximumBytes too large");
    return false;
  }
  return true;
}

/* registerMemory(memory, maximumBytes, storeId, mode = 'missing') -> regId
 * Call it in the thread that owns the memory (a guest worker), before the
 * guest runs. Registers [base, base + maximumBytes). */
/* A registration's common fields; the caller adds what its kind needs. */
static Reg *reg_new(napi_env env, int kind, uintptr_t base, uint64_t max) {
  Reg *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->kind = kind;
  r->base = base;
  r->len = max;
  r->page_count = (uint32_t)(max / g_ps);
  r->env_id = env_id_of(env);
  r->uffd = -1;
  return r;
}

/* Registers r's whole range with its userfaultfd in `mode` (write-protecting
 * it too when asked) and adds it to the handler thread's epoll set. Called
 * with g_lock held; returns NULL or what failed, with *e the errno if any. */
static const char *reg_attach_locked(Reg *r, uint64_t mode, size_t protect_len, int *e) {
  *e = 0;
  if (ensure_thread() < 0) {
    *e = errno;
    return "cannot start handler thread";
  }
  madvise((void *)r->base, r->len, MADV_NOHUGEPAGE); /* exact pages, not 2 MiB */
  struct uffdio_register rg = {.range = {.start = r->base, .len = r->len}, .mode = mode};
  if (ioctl(r->uffd, UFFDIO_REGISTER, &rg) < 0) {
    *e = errno;
    return mode == UFFDIO_REGISTER_MODE_WP ? "UFFDIO_REGISTER(WP)" : "UFFDIO_REGISTER";
  }
  if (protect_len) {
    /* Up to the maximum (now, or in steps: armDirty): never-touched pages get
     * pte markers (WP_UNPOPULATED), including those memory.grow opens up
     * later. Without them 'sync' would miss first writes there, and
     * PAGEMAP_SCAN ('async') reports every unprotected page, even a
     * never-touched one, as written. Costs page tables: 2 MiB and about 10 ms
     * per GiB of maximum. */
    struct uffdio_writeprotect wp = {.range = {.start = r->base, .len = protect_len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
      *e = errno;
      return "UFFDIO_WRITEPROTECT";
    }
    r->armed = protect_len;
  }
  r->id = g_next_id++;
  /* Missing faults and sync write faults arrive here; every registration gets UNMAP events. */
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = r->id};
  if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, r->uffd, &ev) < 0) {
    *e = errno;
    return "epoll_ctl";
  }
  return NULL;
}

/* Refuses a registration once the handler thread has died (handler_died): it
 * would never be served. Called with g_lock held (so that the check and the
 * attach are one step against the death); releases it and frees r. */
static napi_value refuse_dead_locked(napi_env env, Reg *r, const char *what) {
  char why[sizeof g_handler_death];
  memcpy(why, g_handler_death, sizeof why);
  pthread_mutex_unlock(&g_lock);
  reg_free(r);
  return throw_code(env, "ERR_FLURRY_HANDLER_DEAD",
                    "%s: the pager's fault handler thread died (%s); this process cannot register memory any more", what, why);
}

static napi_value js_registerMemory(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  uintptr_t base;
  size_t cur;
  uint64_t max;
  uint32_t sid;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_max_bytes(env, argv[1], cur, &max)) return NULL;
  if (!get_u32(env, argv[2], "storeId", &sid)) return NULL;
  if (!is_nullish(env, argv[3])) {
    char mode[32];
    size_t ml;
    if (napi_get_value_string_utf8(env, argv[3], mode, sizeof mode, &ml) != napi_ok || strcmp(mode, "missing") != 0)
      return throw_code(env, "ERR_INVALID_ARG_VALUE", "mode must be 'missing'");
  }
  if (!caps()->uffd) return throw_code(env, "ERR_FLURRY_NO_USERFAULTFD", "%s", caps()->reason);

  Reg *r = reg_new(env, REG_MISSING, base, max);
  if (!r) return throw_errno(env, "registerMemory", ENOMEM);
  r->populated = bm_alloc(r->page_count);
  r->pending_bm = bm_alloc(r->page_count);
  if (!r->populated || !r->pending_bm) {
    reg_free(r);
    return throw_errno(env, "registerMemory", ENOMEM);
  }
  r->uffd = uffd_new((caps()->event_unmap ? UFFD_FEATURE_EVENT_UNMAP : 0) | (caps()->missing_shmem ? UFFD_FEATURE_MISSING_SHMEM : 0));
  if (r->uffd < 0) {
    int e = errno;
    reg_free(r);
    return throw_errno(env, "userfaultfd", e);
  }

  pthread_mutex_lock(&g_lock);
  if (g_handler_dead) return refuse_dead_locked(env, r, "registerMemory");
  Store *s = find_store(sid);
  const char *err = NULL;
  int e = 0;
  size_t mapped = 0;
  if (!s) err = "unknown store";
  else if (s->page_count > r->page_count) err = "store has more pages than maximumBytes";
  else if (overlaps_locked(base, max)) err = "memory already registered or tracked";
  else if (s->map_pages) {
    /* The store's pages over the memory (as far as it is accessible now):
     * the kernel maps those the host holds, holes fault to the handler. */
    size_t span = s->data_len < cur ? s->data_len : cur;
    if (span && mmap((void *)base, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, s->fd, 0) == MAP_FAILED) {
      e = errno;
      err = "mmap of the page store";
    } else {
      mapped = span;
    }
  }
  r->mapped_len = mapped;
  if (!err) err = reg_attach_locked(r, UFFDIO_REGISTER_MODE_MISSING, 0, &e);
  /* Never leave the store mapped over an unregistered memory: its holes would read as zeros. */
  if (err && mapped) mmap((void *)base, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (err) {
    pthread_mutex_unlock(&g_lock);
    reg_free(r);
    if (e) return throw_code(env, errname(e), "registerMemory: %s: %s", err, strerror(e));
    return throw_code(env, s ? "ERR_FLURRY_BUSY" : "ERR_FLURRY_UNKNOWN_STORE", "registerMemory: %s", err);
  }
  r->store = s;
  s->nregs++;
  r->next = g_regs;
  g_regs = r;
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, r->id, &out));
  return out;
}

#define KIND_WP_ ((1 << REG_WP_ASYNC) | (1 << REG_WP_SYNC))
static Reg *locked_reg_ex(napi_env env, napi_value idv, int kind_mask, bool allow_gone) {
  uint32_t id;
  if (!get_u32(env, idv, "id", &id)) return NULL;
  pthread_mutex_lock(&g_lock);
  Reg *r = find_reg(id);
  if (!r || !((1 << r->kind) & kind_mask)) {
    pthread_mutex_unlock(&g_lock);
    throw_code(env, "ERR_FLURRY_UNKNOWN_REGISTRATION", "unknown %s %u",
               kind_mask == (1 << REG_MISSING) ? "registration" : kind_mask == KIND_WP_ ? "tracker" : "registration or tracker", id);
    return NULL;
  }
  if (r->gone && !allow_gone) {
    pthread_mutex_unlock(&g_lock);
    throw_code(env, "ERR_FLURRY_MEMORY_GONE", "the memory of %u was freed while registered", id);
    return NULL;
  }
  return r;
}
#define locked_reg(env, idv, mask) locked_reg_ex((env), (idv), (mask), false)
#define KIND_MISSING (1 << REG_MISSING)
#define KIND_WP ((1 << REG_WP_ASYNC) | (1 << REG_WP_SYNC))

static bool uffd_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* unregister(regId) -> boolean. Refuses (false) while a fault is pending or
 * queued: unregistering would let the kernel zero-fill the page (data loss).
 * Supply the page (storePut) or zeroFillPending first. Only call it while the
 * guest thread is not running guest code. */
static napi_value js_unregister(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  Reg *r = locked_reg_ex(env, argv[0], KIND_MISSING, true);
  if (!r) return NULL;
  bool ok = false;
  if (!r->gone) {
    drain_reg(r); /* an UNMAP event or a fault may be queued */
    flush_batches();
  }
  if (r->gone || (r->npending == 0 && !uffd_readable(r->uffd))) {
    reg_unlink(r);
    reg_free(r);
    ok = true;
  }
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_get_boolean(env, ok, &out));
  return out;
}

/* zeroFillPending(regId) -> pages zero-filled. Releases every thread sleeping
 * in a fault of this registration with a zero page: for a guest about to be
 * terminated, never for one that goes on running. */
static napi_value js_zeroFillPending(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  Reg *r = locked_reg_ex(env, argv[0], KIND_MISSING, true);
  if (!r) return NULL;
  drain_reg(r); /* faults queued but not read yet */
  uint32_t n = 0;
  while (!r->gone && r->npending) {
    uint32_t page = r->pending[r->npending - 1].page;
    n += reg_fill(r, page, 1, NULL);
    r->st.zero++;
    resolve_pending(r, page, 1, now_ns());
    if (!bm_get(r->populated, page)) { /* could not fill: at least wake it */
      reg_wake(r, page, 1);
      bm_clr(r->pending_bm, page);
      for (uint32_t i = 0; i < r->npending; i++)
        if (r->pending[i].page == page) r->pending[i] = r->pending[--r->npending];
    }
  }
  flush_batches();
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, n, &out));
  return out;
}

/* registrationStats(regId) */
static napi_value js_registrationStats(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  Reg *r = locked_reg_ex(env, argv[0], KIND_MISSING | KIND_WP, true);
  if (!r) return NULL;
  RegStats st = r->st;
  uint32_t pending = r->npending, populated = r->populated_count, pages = r->page_count;
  uint32_t store_id = r->store ? r->store->id : 0;
  bool gone = r->gone;
  /* Pages the kernel mapped from the store: present in the mapped span and not filled by the pager. */
  bool count_mapped = r->mapped_len && !gone && caps()->pagemap_scan;
  uintptr_t span_start = r->base, span_end = r->base + r->mapped_len;
  uint32_t filled = 0;
  if (count_mapped)
    for (uint32_t p = 0; p < (uint32_t)(r->mapped_len / g_ps); p++) filled += bm_get(r->populated, p);
  char failed[sizeof g_handler_death] = "";
  if (r->failed) memcpy(failed, g_handler_death, sizeof failed);
  pthread_mutex_unlock(&g_lock);
  int64_t mapped_pages = -1;
  if (count_mapped) {
    int64_t present = pagemap_count_present(span_start, span_end);
    if (present >= 0) mapped_pages = present > filled ? present - filled : 0;
  }
  napi_value o;
  NAPI_CALL(env, napi_create_object(env, &o));
  set_num(env, o, "storeId", store_id);
  set_num(env, o, "pageCount", pages);
  set_num(env, o, "faults", (double)st.faults);
  set_num(env, o, "duplicateFaults", (double)st.dup_faults);
  set_num(env, o, "missFaults", (double)st.miss_faults);
  set_num(env, o, "pagesCopied", (double)st.copied);
  if (mapped_pages >= 0) set_num(env, o, "pagesMapped", (double)mapped_pages);
  set_num(env, o, "zeroPages", (double)st.zero);
  set_num(env, o, "pagesRequested", (double)st.requested);
  set_num(env, o, "waitNs", (double)st.wait_ns);
  set_num(env, o, "maxWaitNs", (double)st.max_wait_ns);
  set_num(env, o, "resolvedFaults", (double)st.resolved_faults);
  if (st.first_resolved_ns) set_num(env, o, "firstFaultNs", (double)st.first_resolved_ns);
  set_num(env, o, "wpFaults", (double)st.wp_faults);
  set_num(env, o, "pending", pending);
  set_num(env, o, "populated", populated);
  set_num(env, o, "errors", (double)st.errors);
  set_bool(env, o, "gone", gone);
  if (failed[0]) set_str(env, o, "failed", failed);
  if (st.last_errno) set_str(env, o, "lastError", errname(st.last_errno));
  return o;
}

/* registrationPopulate(regId, pages: Uint32Array | number[]) -> pages filled.
 * Fills the listed pages the host has (present or zero) into the registration
 * before the guest touches them (working-set prefetch). Any thread. */
static napi_value js_registrationPopulate(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint32_t *list = NULL;
  uint32_t n = 0;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (is_ta) {
    napi_typedarray_type tt;
    size_t len, off;
    void *data;
    napi_value ab;
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off));
    if (tt != napi_uint32_array) return throw_code(env, "ERR_INVALID_ARG_TYPE", "pages must be a Uint32Array or array");
    list = malloc((len + 1) * 4);
    if (!list) return throw_errno(env, "registrationPopulate", ENOMEM);
    memcpy(list, data, len * 4);
    n = (uint32_t)len;
  } else {
    bool is_arr = false;
    napi_is_array(env, argv[1], &is_arr);
    if (!is_arr) return throw_code(env, "ERR_INVALID_ARG_TYPE", "pages must be a Uint32Array or array");
    uint32_t len;
    NAPI_CALL(env, napi_get_array_length(env, argv[1], &len));
    list = malloc(((size_t)len + 1) * 4);
    if (!list) return throw_errno(env, "registrationPopulate", ENOMEM);
    for (uint32_t i = 0; i < len; i++) {
      napi_value v;
      if (napi_get_element(env, argv[1], i, &v) != napi_ok || !get_u32(env, v, "page", &list[i])) {
        free(list);
        return NULL;
      }
    }
    n = len;
  }
  Reg *r = locked_reg(env, argv[0], KIND_MISSING);
  if (!r) {
    free(list);
    return NULL;
  }
  Store *s = r->store;
  uint32_t filled = 0;
  uint32_t limit = s->page_count < r->page_count ? s->page_count : r->page_count;
  for (uint32_t i = 0; i < n;) {
    uint32_t p = list[i];
    if (p >= limit || bm_get(r->populated, p) || !(bm_get(s->present, p) || bm_get(s->zero, p))) {
      i++;
      continue;
    }
    bool zero = bm_get(s->zero, p);
    uint32_t k = 1;
    while (i + k < n && k < FILL_RUN_PAGES && list[i + k] == p + k && p + k < limit && !bm_get(r->populated, p + k) &&
           (zero ? bm_get(s->zero, p + k) : (bm_get(s->present, p + k) && !bm_get(s->zero, p + k))))
      k++;
    uint32_t got = reg_fill(r, p, k, zero ? NULL : s->data + (size_t)p * g_ps);
    if (zero) r->st.zero += got;
    else r->st.copied += got;
    resolve_pending(r, p, k, now_ns());
    filled += got;
    i += k;
  }
  pthread_mutex_unlock(&g_lock);
  free(list);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, filled, &out));
  return out;
}

/* registrationFill(regId) -> { copied, zeroed, missing: Uint32Array }
 * Fills every page of the snapshot the host has; returns the pages it lacks.
 * When `missing` is empty every snapshot page is populated and unregister
 * loses nothing (pages past the snapshot are zero anyway). */
static napi_value js_registrationFill(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  Reg *r = locked_reg(env, argv[0], KIND_MISSING);
  if (!r) return NULL;
  Store *s = r->store;
  uint32_t limit = s->page_count < r->page_count ? s->page_count : r->page_count;
  uint32_t copied = 0, zeroed = 0, nmiss = 0, capmiss = 0;
  uint32_t *missing = NULL;
  for (uint32_t p = 0; p < limit;) {
    if (bm_get(r->populated, p)) {
      p++;
      continue;
    }
    bool zero = bm_get(s->zero, p), present = bm_get(s->present, p);
    if (!zero && !present) {
      if (nmiss == capmiss) {
        capmiss = capmiss ? capmiss * 2 : 256;
        uint32_t *m = realloc(missing, (size_t)capmiss * 4);
        if (!m) break;
        missing = m;
      }
      missing[nmiss++] = p++;
      continue;
    }
    uint32_t k = 1;
    while (k < FILL_RUN_PAGES && p + k < limit && !bm_get(r->populated, p + k) &&
           (zero ? bm_get(s->zero, p + k) : (bm_get(s->present, p + k) && !bm_get(s->zero, p + k))))
      k++;
    uint32_t got = reg_fill(r, p, k, zero ? NULL : s->data + (size_t)p * g_ps);
    if (zero) {
      zeroed += got;
      r->st.zero += got;
    } else {
      copied += got;
      r->st.copied += got;
    }
    resolve_pending(r, p, k, now_ns());
    p += k;
  }
  pthread_mutex_unlock(&g_lock);
  napi_value o, arr;
  NAPI_CALL(env, napi_create_object(env, &o));
  set_num(env, o, "copied", copied);
  set_num(env, o, "zeroed", zeroed);
  arr = make_u32_array(env, missing, nmiss);
  free(missing);
  if (!arr) return NULL;
  napi_set_named_property(env, o, "missing", arr);
  return o;
}

/* ------------------------------------------------------------------------ */
/* Dirty tracking                                                           */
/* ------------------------------------------------------------------------ */

/* trackDirty(memory, maximumBytes, mode = 'async' | 'sync', armBytes = maximumBytes) -> trackerId
 * Registers [base, base + maximumBytes) and write-protects its first armBytes
 * (unpopulated pages too, with pte markers); armDirty protects the rest in
 * steps. 'async' needs WP_ASYNC + PAGEMAP_SCAN, 'sync' takes a fault per
 * first write after each collect (served by the handler thread, no JS). */
static napi_value js_trackDirty(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  uintptr_t base;
  size_t cur;
  uint64_t max;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_max_bytes(env, argv[1], cur, &max)) return NULL;
  uint64_t arm = max;
  if (!is_nullish(env, argv[3])) {
    if (!get_size(env, argv[3], "armBytes", &arm)) return NULL;
    if (arm % g_ps || arm > max) return throw_code(env, "ERR_OUT_OF_RANGE", "armBytes must be a multiple of %zu within maximumBytes", g_ps);
  }
  int kind = REG_WP_ASYNC;
  if (!is_nullish(env, argv[2])) {
    char mode[16];
    size_t ml;
    if (napi_get_value_string_utf8(env, argv[2], mode, sizeof mode, &ml) != napi_ok)
      return throw_code(env, "ERR_INVALID_ARG_VALUE", "mode must be 'async' or 'sync'");
    if (strcmp(mode, "sync") == 0) kind = REG_WP_SYNC;
    else if (strcmp(mode, "async") != 0) return throw_code(env, "ERR_INVALID_ARG_VALUE", "mode must be 'async' or 'sync'");
  }
  const Caps *c = caps();
  if (!c->uffd || !c->wp) return throw_code(env, "ERR_FLURRY_NO_USERFAULTFD", "userfaultfd write-protect unavailable: %s", c->reason);
  if (kind == REG_WP_ASYNC && !(c->wp_async && c->pagemap_scan))
    return throw_code(env, "ERR_FLURRY_NO_WP_ASYNC", "UFFD_FEATURE_WP_ASYNC/PAGEMAP_SCAN unavailable: use mode 'sync'");
  if (kind == REG_WP_SYNC && !c->wp_unpopulated)
    return throw_code(env, "ERR_FLURRY_NO_WP_UNPOPULATED",
                      "UFFD_FEATURE_WP_UNPOPULATED unavailable: sync tracking would miss first writes to unpopulated pages");
  uint64_t features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_UNPOPULATED;
  if (kind == REG_WP_ASYNC) features |= UFFD_FEATURE_WP_ASYNC;
  if (c->event_unmap) features |= UFFD_FEATURE_EVENT_UNMAP;

  Reg *r = reg_new(env, kind, base, max);
  if (!r) return throw_errno(env, "trackDirty", ENOMEM);
  if (kind == REG_WP_SYNC && !(r->dirty = bm_alloc(r->page_count))) {
    reg_free(r);
    return throw_errno(env, "trackDirty", ENOMEM);
  }
  r->uffd = uffd_new(features);
  if (r->uffd < 0) {
    int e = errno;
    reg_free(r);
    return throw_errno(env, "userfaultfd (write-protect)", e);
  }
  pthread_mutex_lock(&g_lock);
  /* Even 'async', which needs no thread for writes: nobody would read the UNMAP event its munmap waits for. */
  if (g_handler_dead) return refuse_dead_locked(env, r, "trackDirty");
  const char *err = NULL;
  int e = 0;
  if (overlaps_locked(base, max)) err = "memory already registered or tracked (fill and unregister a lazy memory first)";
  else err = reg_attach_locked(r, UFFDIO_REGISTER_MODE_WP, arm, &e);
  if (err) {
    pthread_mutex_unlock(&g_lock);
    reg_free(r);
    if (e) return throw_code(env, errname(e), "trackDirty: %s: %s: %s", err, errname(e), strerror(e));
    return throw_code(env, "ERR_FLURRY_BUSY", "trackDirty: %s", err);
  }
  r->next = g_regs;
  g_regs = r;
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, r->id, &out));
  return out;
}

typedef struct U32Vec {
  uint32_t *v;
  size_t n, cap;
} U32Vec;

static bool vec_push(U32Vec *a, uint32_t x) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 1024;
    uint32_t *v = realloc(a->v, cap * 4);
    if (!v) return false;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = x;
  return true;
}

/* PAGEMAP_SCAN over [start, end) with the given categories, in batches of
 * regions: `visit` gets each batch; returns 0, or -errno (of the scan or of
 * a visit). */
typedef int (*region_visit)(const struct page_region *regs, int n, void *ctx);
static int pagemap_walk(uintptr_t start, uintptr_t end, uint64_t flags, uint64_t inverted, uint64_t mask,
                        uint64_t anyof, uint64_t ret_mask, region_visit visit, void *ctx) {
  enum { NREG = 512 };
  struct page_region regs[NREG];
  struct pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.flags = flags;
  a.start = start;
  a.end = end;
  a.vec = (uintptr_t)regs;
  a.vec_len = NREG;
  a.category_inverted = inverted;
  a.category_mask = mask;
  a.category_anyof_mask = anyof;
  a.return_mask = ret_mask;
  for (;;) {
    int n = ioctl(g_pagemap_fd, PAGEMAP_SCAN, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int err = visit(regs, n, ctx);
    if (err < 0) return err;
    if (a.walk_end >= end || a.walk_end == 0) break;
    a.start = a.walk_end;
  }
  return 0;
}

typedef struct {
  uintptr_t base;
  U32Vec *out;
} PageIndices;

static int push_page_indices(const struct page_region *regs, int n, void *ctx) {
  PageIndices *pi = ctx;
  for (int i = 0; i < n; i++)
    for (uint64_t p = regs[i].start; p < regs[i].end; p += g_ps)
      if (!vec_push(pi->out, (uint32_t)((p - pi->base) / g_ps))) return -ENOMEM;
  return 0;
}

/* PAGEMAP_SCAN over [start, end): page indices (relative to base) of every
 * region matching; returns 0 or -errno. */
static int pagemap_scan(uintptr_t base, uintptr_t start, uintptr_t end, uint64_t flags, uint64_t inverted,
                        uint64_t mask, uint64_t anyof, uint64_t ret_mask, U32Vec *out) {
  PageIndices pi = {.base = base, .out = out};
  return pagemap_walk(start, end, flags, inverted, mask, anyof, ret_mask, push_page_indices, &pi);
}

static int count_pages(const struct page_region *regs, int n, void *ctx) {
  int64_t *pages = ctx;
  for (int i = 0; i < n; i++) *pages += (int64_t)((regs[i].end - regs[i].start) / g_ps);
  return 0;
}

/* Pages in [start, end) PAGEMAP_SCAN finds present, or -errno. */
static int64_t pagemap_count_present(uintptr_t start, uintptr_t end) {
  int64_t pages = 0;
  int err = pagemap_walk(start, end, 0, 0, PAGE_IS_PRESENT, 0, PAGE_IS_PRESENT, count_pages, &pages);
  return err < 0 ? err : pages;
}

/* armDirty(trackerId, bytes) -> bytes armed in all
 * Write-protects the next `bytes` of a tracker armed in steps (clipped to its
 * range). Each step is short, so that the thread that owns the memory can do
 * it between the guest's requests: a write before a page's step is not
 * tracked (the caller reads what is written up to each step first). */
static napi_value js_armDirty(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint64_t bytes;
  if (!get_size(env, argv[1], "bytes", &bytes)) return NULL;
  if (bytes % g_ps) return throw_code(env, "ERR_OUT_OF_RANGE", "bytes must be a multiple of %zu", g_ps);
  Reg *r = locked_reg(env, argv[0], KIND_WP);
  if (!r) return NULL;
  uintptr_t start = r->base + r->armed;
  size_t len = bytes < r->len - r->armed ? bytes : r->len - r->armed;
  int uffd = r->uffd;
  /* Outside the lock, which the handler thread needs meanwhile: only this thread closes the tracker. */
  pthread_mutex_unlock(&g_lock);
  struct uffdio_writeprotect wp = {.range = {.start = start, .len = len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (len && ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) return throw_errno(env, "armDirty (UFFDIO_WRITEPROTECT)", errno);
  pthread_mutex_lock(&g_lock);
  r->armed += len;
  size_t armed = r->armed;
  pthread_mutex_unlock(&g_lock);
  napi_value out;
  NAPI_CALL(env, napi_create_double(env, (double)armed, &out));
  return out;
}

/* collectDirty(trackerId, upTo?: memory | bytes) -> Uint32Array of pages
 * written since trackDirty or the previous collect; those pages are
 * write-protected again. Read the pages' contents after this returns.
 * `upTo` (the memory, or its current byte length) limits the 'async' scan to
 * the memory's current size: pages past it cannot have been written, and
 * scanning a 4 GiB maximum costs ~2.5 ms even when nothing is dirty. */
static napi_value js_collectDirty(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uint64_t upto = UINT64_MAX;
  if (!is_nullish(env, argv[1])) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[1], &t));
    if (t == napi_number) {
      if (!get_size(env, argv[1], "upTo", &upto)) return NULL;
    } else {
      uint8_t *p;
      size_t n;
      if (!get_bytes(env, argv[1], &p, &n, 0)) return NULL;
      upto = n;
    }
    upto = (upto + g_ps - 1) & ~((uint64_t)g_ps - 1);
  }
  Reg *r = locked_reg(env, argv[0], KIND_WP);
  if (!r) return NULL;
  if (r->failed) {
    char why[sizeof g_handler_death];
    memcpy(why, g_handler_death, sizeof why);
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_FLURRY_HANDLER_DEAD",
                      "collectDirty: the pager's fault handler thread died (%s): writes since then were not recorded", why);
  }
  if (r->armed < r->len) {
    pthread_mutex_unlock(&g_lock);
    return throw_code(env, "ERR_FLURRY_NOT_ARMED", "collectDirty: tracker %u is armed over %zu of %zu bytes (armDirty the rest first)", r->id, r->armed, r->len);
  }
  U32Vec out = {0};
  int err = 0;
  if (r->kind == REG_WP_ASYNC) {
    uintptr_t base = r->base, end = r->base + (upto < r->len ? upto : r->len);
    pthread_mutex_unlock(&g_lock); /* the scan needs no state of ours; it may take ms */
    /* Exactly category_mask = return_mask = WRITTEN: the kernel's fast path. */
    err = pagemap_scan(base, base, end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, 0, PAGE_IS_WRITTEN, 0,
                       PAGE_IS_WRITTEN, &out);
  } else {
    for (uint32_t w = 0; w < bm_words(r->page_count) && !err; w++) {
      uint64_t bits = r->dirty[w];
      if (!bits) continue;
      r->dirty[w] = 0;
      while (bits) {
        uint32_t p = w * 64 + (uint32_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        if (!vec_push(&out, p)) err = -ENOMEM;
      }
    }
    r->dirty_count = 0;
    /* Re-protect in runs. */
    for (size_t i = 0; i < out.n;) {
      size_t k = 1;
      while (i + k < out.n && out.v[i + k] == out.v[i] + k) k++;
      struct uffdio_writeprotect wp = {.range = {.start = r->base + (uint64_t)out.v[i] * g_ps, .len = k * g_ps},
                                       .mode = UFFDIO_WRITEPROTECT_MODE_WP};
      if (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) reg_error(r, errno);
      i += k;
    }
    pthread_mutex_unlock(&g_lock);
  }
  if (err) {
    free(out.v);
    return throw_errno(env, "collectDirty (PAGEMAP_SCAN)", -err);
  }
  napi_value arr = make_u32_array(env, out.v, out.n);
  free(out.v);
  return arr;
}

/* stopTracking(trackerId): closes the tracker; the memory stays as it is. */
static napi_value js_stopTracking(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  Reg *r = locked_reg_ex(env, argv[0], KIND_WP, true);
  if (!r) return NULL;
  drain_reg(r); /* resolve any sync write fault still queued */
  reg_unlink(r);
  pthread_mutex_unlock(&g_lock);
  reg_free(r); /* closing the uffd drops the registration and wakes anyone left */
  return NULL;
}

/* privatePages(memory, length, offset = 0) -> Uint32Array of pages in
 * [offset, offset + length) that are present and not file-backed (nor the
 * zero page): on a copy-on-write clone, the pages it wrote (its diff against
 * the snapshot). No registration. Indices count from the memory's start. */
static napi_value js_privatePages(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uintptr_t base;
  size_t cur;
  uint64_t len, off = 0;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_size(env, argv[1], "length", &len)) return NULL;
  if (!is_nullish(env, argv[2]) && !get_size(env, argv[2], "offset", &off)) return NULL;
  if (len % g_ps || off % g_ps || off > cur || len > cur - off)
    return throw_code(env, "ERR_OUT_OF_RANGE", "offset and length must be page-aligned and within the memory");
  if (!caps()->pagemap_scan) return throw_code(env, "ERR_FLURRY_NO_PAGEMAP_SCAN", "PAGEMAP_SCAN unavailable");
  U32Vec out = {0};
  int err = pagemap_scan(base, base + off, base + off + len, 0, PAGE_IS_FILE | PAGE_IS_PFNZERO, PAGE_IS_FILE | PAGE_IS_PFNZERO,
                         PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, &out);
  if (err) {
    free(out.v);
    return throw_errno(env, "privatePages (PAGEMAP_SCAN)", -err);
  }
  napi_value arr = make_u32_array(env, out.v, out.n);
  free(out.v);
  return arr;
}

/* ------------------------------------------------------------------------ */
/* Copy-on-write local fork                                                 */
/* ------------------------------------------------------------------------ */

static int write_all(int fd, const uint8_t *p, size_t n, off_t off) {
  while (n) {
    ssize_t w = pwrite(fd, p, n > (1u << 30) ? (1u << 30) : n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

static bool page_is_zero(const uint8_t *p) {
  const uint64_t *w = (const uint64_t *)p;
  uint64_t acc = 0;
  for (size_t i = 0; i < g_ps / 8; i++) acc |= w[i];
  return acc == 0;
}

/* Write bytes at offset; with sparse, all-zero pages are left as holes. */
static int write_sparse(int fd, const uint8_t *p, size_t n, off_t off, bool sparse) {
  if (!sparse || (off % (off_t)g_ps) != 0) return write_all(fd, p, n, off);
  size_t i = 0;
  while (i < n) {
    size_t chunk = n - i < g_ps ? n - i : g_ps;
    if (chunk == g_ps && page_is_zero(p + i)) {
      i += g_ps;
      continue;
    }
    size_t j = i + chunk;
    while (j < n && !(n - j >= g_ps && page_is_zero(p + j))) j += (n - j < g_ps ? n - j : g_ps);
    if (write_all(fd, p + i, j - i, off + (off_t)i) < 0) return -1;
    i = j;
  }
  return 0;
}

/* memfdCreate(name, source: bytes | memory | size, { seal?, sparse? }) -> fd
 * From bytes: sized and filled (all-zero pages left as holes unless
 * sparse: false), sealed against writes and resizing unless seal: false.
 * From a size: empty, unsealed (fill it with memfdWrite, then memfdSeal). */
static napi_value js_memfdCreate(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  caps();
  char name[128] = "flurry-snapshot";
  size_t nl;
  napi_valuetype t;
  if (!is_nullish(env, argv[0]) && napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nl) != napi_ok)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "name must be a string");
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  uint8_t *bytes = NULL;
  size_t len = 0;
  uint64_t size = 0;
  bool from_bytes = t != napi_number;
  if (from_bytes) {
    if (!get_bytes(env, argv[1], &bytes, &len, 0)) return NULL;
    size = len;
  } else if (!get_size(env, argv[1], "size", &size)) {
    return NULL;
  }
  bool seal = get_bool_prop(env, argv[2], "seal", from_bytes);
  bool sparse = get_bool_prop(env, argv[2], "sparse", true);
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)size) < 0 || (from_bytes && len && write_sparse(fd, bytes, len, 0, sparse) < 0)) {
    int e = errno;
    close(fd);
    return throw_errno(env, "memfdCreate", e);
  }
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "memfd seal", e);
  }
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, fd, &out));
  return out;
}

/* memfdWrite(fd, offset, bytes, { sparse? }) */
static napi_value js_memfdWrite(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  uint32_t fd;
  uint64_t off;
  uint8_t *bytes;
  size_t len;
  if (!get_u32(env, argv[0], "fd", &fd) || !get_size(env, argv[1], "offset", &off)) return NULL;
  if (!get_bytes(env, argv[2], &bytes, &len, 0)) return NULL;
  bool sparse = get_bool_prop(env, argv[3], "sparse", false);
  if (write_sparse((int)fd, bytes, len, (off_t)off, sparse) < 0) return throw_errno(env, "memfdWrite", errno);
  return NULL;
}

/* memfdSeal(fd) */
static napi_value js_memfdSeal(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t fd;
  if (!get_u32(env, argv[0], "fd", &fd)) return NULL;
  if (fcntl((int)fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return throw_errno(env, "memfdSeal", errno);
  return NULL;
}

/* fdSize(fd) -> bytes */
static napi_value js_fdSize(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t fd;
  if (!get_u32(env, argv[0], "fd", &fd)) return NULL;
  struct stat st;
  if (fstat((int)fd, &st) < 0) return throw_errno(env, "fstat", errno);
  napi_value out;
  NAPI_CALL(env, napi_create_double(env, (double)st.st_size, &out));
  return out;
}

/* closeFd(fd) */
static napi_value js_closeFd(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t fd;
  if (!get_u32(env, argv[0], "fd", &fd)) return NULL;
  if (close((int)fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

/* anyReadable(fds: Int32Array) -> boolean: whether any of the descriptors has
 * data to read or is closed, without waiting (poll with a timeout of 0). A
 * call thread that reads its own connections polls its sockets with it before
 * it sleeps in its event loop, as the others poll their doorbell. */
static napi_value js_anyReadable(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  napi_typedarray_type type;
  size_t n;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &type, &n, &data, &ab, &off) != napi_ok || type != napi_int32_array)
    return throw_code(env, "ERR_INVALID_ARG_TYPE", "fds must be an Int32Array");
  struct pollfd pf[64];
  if (n > 64) n = 64;
  const int32_t *fds = data;
  for (size_t i = 0; i < n; i++) {
    pf[i].fd = fds[i];
    pf[i].events = POLLIN;
    pf[i].revents = 0;
  }
  int r = poll(pf, (nfds_t)n, 0);
  napi_value out;
  napi_get_boolean(env, r > 0, &out);
  return out;
}

/* mapSnapshotPrivate(memory, fd, length): mmap(fd) MAP_PRIVATE|MAP_FIXED over
 * [base, base + length). length must be page-aligned, within the memory's
 * current size and within the file (past its end reads SIGBUS). */
static napi_value js_mapSnapshotPrivate(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uintptr_t base;
  size_t cur;
  uint32_t fd;
  uint64_t len;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_u32(env, argv[1], "fd", &fd) || !get_size(env, argv[2], "length", &len)) return NULL;
  if (len == 0 || len % g_ps) return throw_code(env, "ERR_OUT_OF_RANGE", "length must be a positive multiple of %zu", g_ps);
  if (len > cur)
    return throw_code(env, "ERR_OUT_OF_RANGE", "length %llu exceeds the memory's size %zu: grow it first",
                      (unsigned long long)len, cur);
  struct stat st;
  if (fstat((int)fd, &st) < 0) return throw_errno(env, "fstat", errno);
  if ((uint64_t)st.st_size < len)
    return throw_code(env, "ERR_OUT_OF_RANGE", "length %llu exceeds the file's size %lld",
                      (unsigned long long)len, (long long)st.st_size);
  pthread_mutex_lock(&g_lock);
  bool busy = overlaps_locked(base, len);
  pthread_mutex_unlock(&g_lock);
  if (busy) return throw_code(env, "ERR_FLURRY_BUSY", "memory is registered or tracked: cannot map over it");
  void *p = mmap((void *)base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, (int)fd, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if ((uintptr_t)p != base) return throw_code(env, "ERR_FLURRY_MAP", "mmap returned another address");
  return NULL;
}

/* resetMemory(memory, length): fresh anonymous zero pages (MAP_PRIVATE |
 * MAP_ANONYMOUS | MAP_FIXED) over [base, base + length), so that a memory a
 * clone used holds nothing of it (its own pages, pages a pager filled, a
 * snapshot mapped over it) and can serve the next clone. length is
 * page-aligned and within the memory's current size. */
static napi_value js_resetMemory(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uintptr_t base;
  size_t cur;
  uint64_t len;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_size(env, argv[1], "length", &len)) return NULL;
  if (len == 0 || len % g_ps) return throw_code(env, "ERR_OUT_OF_RANGE", "length must be a positive multiple of %zu", g_ps);
  if (len > cur)
    return throw_code(env, "ERR_OUT_OF_RANGE", "length %llu exceeds the memory's size %zu",
                      (unsigned long long)len, cur);
  pthread_mutex_lock(&g_lock);
  bool busy = overlaps_locked(base, len);
  pthread_mutex_unlock(&g_lock);
  if (busy) return throw_code(env, "ERR_FLURRY_BUSY", "memory is registered or tracked: cannot reset it");
  void *p = mmap((void *)base, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if ((uintptr_t)p != base) return throw_code(env, "ERR_FLURRY_MAP", "mmap returned another address");
  return NULL;
}

/* populateRead(memory, length): MADV_POPULATE_READ (maps pages read-only,
 * copies nothing). Never MAP_POPULATE a private writable mapping. */
static napi_value js_populateRead(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  uintptr_t base;
  size_t cur;
  uint64_t len;
  caps();
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  if (!get_size(env, argv[1], "length", &len)) return NULL;
  if (len > cur) len = cur;
  len = (len + g_ps - 1) & ~((uint64_t)g_ps - 1);
  if (len && madvise((void *)base, len, MADV_POPULATE_READ) < 0) return throw_errno(env, "madvise(POPULATE_READ)", errno);
  return NULL;
}

/* timeTouches(memory, pages: Uint32Array, write = false) -> Float64Array:
 * touches one byte of each listed 4 KiB page of `memory`, in order, on the
 * calling thread, and returns each touch's CLOCK_MONOTONIC time in ns (the
 * clock's own cost included: see clockCostNs). A first touch is a page fault:
 * served by the kernel (plain anonymous memory) or by the handler thread (a
 * registered memory). Benchmarks only: the calling thread must not be the one
 * that answers misses. */
static napi_value js_timeTouches(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uintptr_t base;
  size_t cur;
  if (!get_memory(env, argv[0], &base, &cur)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  napi_typedarray_type tt = napi_int8_array;
  size_t n = 0, off;
  void *data = NULL;
  napi_value ab;
  if (is_ta) NAPI_CALL(env, napi_get_typedarray_info(env, argv[1], &tt, &n, &data, &ab, &off));
  if (!is_ta || tt != napi_uint32_array) return throw_code(env, "ERR_INVALID_ARG_TYPE", "pages must be a Uint32Array");
  bool write = false;
  if (!is_nullish(env, argv[2])) NAPI_CALL(env, napi_get_value_bool(env, argv[2], &write));
  const uint32_t *pages = data;
  for (size_t i = 0; i < n; i++)
    if ((uint64_t)pages[i] * g_ps >= cur) return throw_code(env, "ERR_OUT_OF_RANGE", "page %u is past the memory's end", pages[i]);
  void *out;
  napi_value outAb, arr;
  NAPI_CALL(env, napi_create_arraybuffer(env, n * sizeof(double), &out, &outAb));
  double *times = out;
  for (size_t i = 0; i < n; i++) {
    volatile uint8_t *b = (volatile uint8_t *)(base + (uintptr_t)pages[i] * g_ps);
    uint64_t t0 = now_ns();
    if (write) *b = 1;
    else (void)*b;
    times[i] = (double)(now_ns() - t0);
  }
  NAPI_CALL(env, napi_create_typedarray(env, napi_float64_array, n, outAb, 0, &arr));
  return arr;
}

/* clockCostNs(samples) -> Float64Array: back-to-back CLOCK_MONOTONIC reads,
 * the cost timeTouches adds to each touch. */
static napi_value js_clockCostNs(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint32_t n;
  if (!get_u32(env, argv[0], "samples", &n)) return NULL;
  void *out;
  napi_value ab, arr;
  NAPI_CALL(env, napi_create_arraybuffer(env, (size_t)n * sizeof(double), &out, &ab));
  double *times = out;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    times[i] = (double)(now_ns() - t0);
  }
  NAPI_CALL(env, napi_create_typedarray(env, napi_float64_array, n, ab, 0, &arr));
  return arr;
}

/* readFdInto(memory, fd, length, offset = 0): pread the file into the memory
 * (the copying fallback of a local fork). */
static napi_value js_readFdInto(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  uint8_t *p;
  size_t cur;
  uint32_t fd;
  uint64_t len, off = 0;
  if (!get_bytes(env, argv[0], &p, &cur, 0)) return NULL;
  if (!get_u32(env, argv[1], "fd", &fd) || !get_size(env, argv[2], "length", &len)) return NULL;
  if (!is_nullish(env, argv[3]) && !get_size(env, argv[3], "offset", &off)) return NULL;
  if (len > cur) return throw_code(env, "ERR_OUT_OF_RANGE", "length exceeds the memory");
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread((int)fd, p + done, len - done > (1u << 30) ? (1u << 30) : len - done, (off_t)(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return throw_errno(env, "pread", errno);
    }
    if (n == 0) return throw_code(env, "ERR_OUT_OF_RANGE", "file shorter than length");
    done += (size_t)n;
  }
  return NULL;
}

/* memoryAddress(memory) -> bigint: base of the backing store (for the
 * V8-assumption tests). */
static napi_value js_memoryAddress(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint8_t *p;
  size_t n;
  caps();
  if (!get_bytes(env, argv[0], &p, &n, 0)) return NULL;
  napi_value out;
  NAPI_CALL(env, napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)p, &out));
  return out;
}

/* zeroBitmap(bytes) -> Uint8Array (LSB-first, one bit per page; a partial
 * last page counts as zero if its bytes are). */
static napi_value js_zeroBitmap(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  uint8_t *p;
  size_t n;
  caps();
  if (!get_bytes(env, argv[0], &p, &n, 0)) return NULL;
  size_t pages = (n + g_ps - 1) / g_ps;
  void *data;
  napi_value ab, arr;
  NAPI_CALL(env, napi_create_arraybuffer(env, (pages + 7) / 8, &data, &ab));
  uint8_t *bits = data;
  memset(bits, 0, (pages + 7) / 8);
  for (size_t i = 0; i < pages; i++) {
    bool z;
    if ((i + 1) * g_ps <= n) z = page_is_zero(p + i * g_ps);
    else {
      z = true;
      for (size_t j = i * g_ps; j < n; j++)
        if (p[j]) {
          z = false;
          break;
        }
    }
    if (z) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  }
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, (pages + 7) / 8, ab, 0, &arr));
  return arr;
}

/* debugState() -> { stores, registrations, handlerThread, handlerPasses, handlerDeath? } */
static napi_value js_debugState(napi_env env, napi_callback_info info) {
  pthread_mutex_lock(&g_lock);
  uint32_t ns = 0, nr = 0;
  for (Store *s = g_stores; s; s = s->next) ns++;
  for (Reg *r = g_regs; r; r = r->next) nr++;
  bool running = g_thread_started && !g_handler_dead;
  uint64_t passes = g_handler_passes;
  char death[sizeof g_handler_death] = "";
  if (g_handler_dead) memcpy(death, g_handler_death, sizeof death);
  pthread_mutex_unlock(&g_lock);
  napi_value o;
  NAPI_CALL(env, napi_create_object(env, &o));
  set_num(env, o, "stores", ns);
  set_num(env, o, "registrations", nr);
  set_bool(env, o, "handlerThread", running);
  set_num(env, o, "handlerPasses", (double)passes);
  if (death[0]) set_str(env, o, "handlerDeath", death);
  return o;
}

/* ------------------------------------------------------------------------ */
/* Environment lifecycle                                                    */
/* ------------------------------------------------------------------------ */

static void env_cleanup(void *arg) {
  EnvData *d = arg;
  pthread_mutex_lock(&g_lock);
  for (Reg **pp = &g_regs; *pp;) {
    Reg *r = *pp;
    if (r->env_id == d->env_id) {
      *pp = r->next;
      if (r->store) r->store->nregs--;
      reg_free(r);
    } else {
      pp = &r->next;
    }
  }
  pthread_mutex_unlock(&g_lock);
}

static void env_data_finalize(napi_env env, void *data, void *hint) { free(data); }

#define EXPORT_FN(name)                                                   \
  do {                                                                    \
    napi_value fn_;                                                       \
    napi_create_function(env, #name, NAPI_AUTO_LENGTH, js_##name, NULL, &fn_); \
    napi_set_named_property(env, exports, #name, fn_);                    \
  } while (0)

NAPI_MODULE_INIT() {
  caps();
  EnvData *d = calloc(1, sizeof *d);
  if (d) {
    pthread_mutex_lock(&g_lock);
    d->env_id = g_next_env++;
    pthread_mutex_unlock(&g_lock);
    napi_set_instance_data(env, d, env_data_finalize, NULL);
    napi_add_env_cleanup_hook(env, env_cleanup, d);
  }
  EXPORT_FN(capabilities);
  EXPORT_FN(createStore);
  EXPORT_FN(storeConfigure);
  EXPORT_FN(storePut);
  EXPORT_FN(storeMarkZero);
  EXPORT_FN(storeSetRuns);
  EXPORT_FN(storeHas);
  EXPORT_FN(storeStats);
  EXPORT_FN(storeWaiting);
  EXPORT_FN(storeForgetRequests);
  EXPORT_FN(storeRead);
  EXPORT_FN(storeFaultOrder);
  EXPORT_FN(dropStore);
  EXPORT_FN(setMissHandler);
  EXPORT_FN(setHandlerDeathHandler);
  EXPORT_FN(debugFailHandler);
  EXPORT_FN(registerMemory);
  EXPORT_FN(unregister);
  EXPORT_FN(zeroFillPending);
  EXPORT_FN(registrationStats);
  EXPORT_FN(registrationPopulate);
  EXPORT_FN(registrationFill);
  EXPORT_FN(trackDirty);
  EXPORT_FN(collectDirty);
  EXPORT_FN(stopTracking);
  EXPORT_FN(armDirty);
  EXPORT_FN(privatePages);
  EXPORT_FN(memfdCreate);
  EXPORT_FN(memfdWrite);
  EXPORT_FN(memfdSeal);
  EXPORT_FN(fdSize);
  EXPORT_FN(closeFd);
  EXPORT_FN(anyReadable);
  EXPORT_FN(mapSnapshotPrivate);
  EXPORT_FN(resetMemory);
  EXPORT_FN(populateRead);
  EXPORT_FN(timeTouches);
  EXPORT_FN(clockCostNs);
  EXPORT_FN(readFdInto);
  EXPORT_FN(memoryAddress);
  EXPORT_FN(zeroBitmap);
  EXPORT_FN(debugState);
  return exports;
}

#else /* !__linux__ */

/* Other systems: the host runs the portable pager. */
static napi_value js_capabilities(napi_env env, napi_callback_info info) {
  napi_value o, f, r;
  napi_create_object(env, &o);
  napi_get_boolean(env, false, &f);
  napi_set_named_property(env, o, "userfaultfd", f);
  napi_set_named_property(env, o, "writeProtect", f);
  napi_set_named_property(env, o, "wpAsync", f);
  napi_set_named_property(env, o, "wpUnpopulated", f);
  napi_set_named_property(env, o, "pagemapScan", f);
  napi_set_named_property(env, o, "memfd", f);
  napi_create_string_utf8(env, "not Linux: userfaultfd and memfd are Linux-only", NAPI_AUTO_LENGTH, &r);
  napi_set_named_property(env, o, "reason", r);
  return o;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "capabilities", NAPI_AUTO_LENGTH, js_capabilities, NULL, &fn);
  napi_set_named_property(env, exports, "capabilities", fn);
  return exports;
}

#endif
