/**
 * The latest live migrations this gateway drove (by the API, a drain or a
 * consolidation move), each with its pre-copy rounds and its pause, for the
 * dashboard's migrations panel. Kept in memory, newest last: a gateway
 * replica shows the migrations it drove itself (docs/dashboard.md).
 */
import type { MigrationReportWire } from '@flurry/core';

/** Migrations kept; older ones are dropped. */
export const MIGRATIONS_KEPT = 50;

/** One migration as the dashboard shows it. */
export interface MigrationEntry {
  /** When it committed (ms since the epoch). */
  at: number;
  tenant: string;
  service: string;
  instanceId: string;
  source: string;
  target: string;
  /** Pages sent in each pre-copy round, and how long the round took. */
  rounds: { pages: number; ms: number }[];
  /** Pages sent during the pause (stop-and-copy). */
  finalPages: number;
  stopReason: string;
  /** The pause: requests were held this long. */
  downtimeMs: number;
  totalMs: number;
  totalBytes: number;
  /** Requests held during the pause and forwarded to the target. */
  forwarded: number;
}

export class MigrationHistory {
  private readonly entries: MigrationEntry[] = [];

  /** A migration of `tenant`'s instance committed with this report. */
  add(tenant: string, service: string, instanceId: string, report: MigrationReportWire): void {
    this.entries.push({
      at: Date.now(), tenant, service, instanceId, source: report.source, target: report.target,
      rounds: report.rounds.map((r) => ({ pages: r.pages, ms: r.ms })), finalPages: report.finalPages, stopReason: report.stopReason,
      downtimeMs: report.downtimeMs, totalMs: report.totalMs, totalBytes: report.totalBytes, forwarded: report.forwarded,
    });
    if (this.entries.length > MIGRATIONS_KEPT) this.entries.shift();
  }

  /** The kept migrations of `tenant`'s instances, or of every tenant's when undefined (an admin), newest last. */
  list(tenant: string | undefined): MigrationEntry[] {
    return tenant === undefined ? [...this.entries] : this.entries.filter((e) => e.tenant === tenant);
  }
}
