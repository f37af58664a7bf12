/** Decides which pager this host uses: the native userfaultfd pager where the kernel allows it, else the portable one. */
import type { HostRecord } from '@flurry/core';

export interface PagerDecision {
  mode: HostRecord['pager'];
  /** Why the native pager is not used, when it is not. */
  reason?: string;
}

export async function detectPager(wanted: 'auto' | 'userfaultfd' | 'portable'): Promise<PagerDecision> {
  if (wanted === 'portable') return { mode: 'portable', reason: 'FLURRY_PAGER=portable' };
  const { nativePagerStatus } = await import('./native/pager.js');
  const status = nativePagerStatus();
  if (status.available) return { mode: 'userfaultfd' };
  if (wanted === 'userfaultfd') throw new Error(`FLURRY_PAGER=userfaultfd but the native pager is unavailable: ${status.reason}`);
  return { mode: 'portable', reason: status.reason };
}
