/**
 * The latest live migrations this gateway drove (by the API, a drain or a
 * consolidation move), each with its pre-copy rounds and its pause, for the
 * dashboard's migrations panel. Kept in memory, newest last: a gateway
 * replica shows the migrations it drove itself (docs/dashboard.md).
 */
import type { MigrationReportWire } from '@flurry/core';
import type { MigrationEntry } from './dashboard-schema.js';

/** Migrations kept; older ones are dropped. */
export const MIGRATIONS_KEPT = 50;

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
