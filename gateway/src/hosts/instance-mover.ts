/**
 * Moves one service instance to another host by live migration
 * (InstanceMigrations.migrate) on behalf of consolidation or a drain, and writes
 * the move, its reason and its outcome to the journal and the log.
 */
import type { ControllerMove, Logger } from '@flurry/core';
import type { Journal } from './journal.js';
import type { InstanceMigrations } from '../services/instance-migration.js';

export interface InstanceRef {
  tenant: string;
  service: string;
  instanceId: string;
  host: string;
}

export class InstanceMover {
  constructor(
    private readonly migrations: InstanceMigrations,
    private readonly journal: Journal,
    private readonly log: Logger,
  ) {}

  async move(inst: InstanceRef, to: string, kind: ControllerMove['kind'], reason: string): Promise<ControllerMove> {
    const base = { at: Date.now(), tenant: inst.tenant, service: inst.service, instanceId: inst.instanceId, from: inst.host, to, kind, reason };
    let move: ControllerMove;
    try {
      const report = await this.migrations.migrate(inst.tenant, inst.instanceId, to);
      move = { ...base, ok: true, downtimeMs: report.downtimeMs };
      this.log.info({ ...base, downtimeMs: report.downtimeMs }, 'instance moved');
    } catch (err) {
      move = { ...base, ok: false, error: (err as Error).message };
      this.log.warn({ ...base, err: (err as Error).message }, 'instance move failed');
    }
    await this.journal.add(move).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'journal write failed'));
    return move;
  }
}
