/*
 * Kernel uapi constants newer than Debian 12's headers (Linux 6.1).
 *
 * Checked against Linux 6.18 include/uapi/linux/userfaultfd.h and
 * include/uapi/linux/fs.h. Every definition is guarded, so a newer
 * linux-libc-dev takes precedence; the kernel decides at run time whether a
 * feature works (capabilities() probes it).
 */
#ifndef FLURRY_UAPI_COMPAT_H
#define FLURRY_UAPI_COMPAT_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include <linux/fs.h>

/* ---- userfaultfd (include/uapi/linux/userfaultfd.h) ---- */

#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC 0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* Since 6.4: write-protect unpopulated anonymous memory with pte markers. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
/* Since 6.7: the kernel resolves write-protect faults itself; PAGEMAP_SCAN
 * reports and re-protects the written pages. Implies WP_UNPOPULATED. */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

/* ---- PAGEMAP_SCAN (include/uapi/linux/fs.h, since 6.7) ---- */

#ifndef PAGEMAP_SCAN

/* Bitmasks provided in pm_scan_args masks and reported in page_region.categories. */
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
#define PAGE_IS_GUARD (1 << 8)

struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};

/* Flags for PAGEMAP_SCAN ioctl */
#define PM_SCAN_WP_MATCHING (1 << 0)   /* Write protect the pages matched. */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* Abort the scan when a non-WP-enabled page is found. */

struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)

#endif /* PAGEMAP_SCAN */

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#endif /* FLURRY_UAPI_COMPAT_H */
