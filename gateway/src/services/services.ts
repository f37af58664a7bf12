/**
 * A gateway's services (docs/services.md), opened together: the store of
 * their records and placements, the records' API, the instances' scaling,
 * request routing, migration, and this gateway's request counts. Each part
 * is its own module; this is only their wiring.
 */
import type { Fabric, FunctionRecord, Logger } from '@flurry/core';
import type { FleetView } from '../fleet-view.js';
import { InstanceMigrations } from './instance-migration.js';
import { InstanceScaling } from './instance-scaling.js';
import { RequestCounts } from './request-counts.js';
import { ServiceRecords } from './service-records.js';
import { ServiceRouter } from './service-router.js';
import { ServiceStore } from './service-store.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { MigrationHistory } from '../ui/migration-history.js';

export interface Services {
  store: ServiceStore;
  records: ServiceRecords;
  scaling: InstanceScaling;
  router: ServiceRouter;
  migrations: InstanceMigrations;
  counts: RequestCounts;
  /** The latest migrations this gateway drove, for the dashboard. */
  migrationHistory: MigrationHistory;
}

export interface ServicesDeps {
  fabric: Fabric;
  fleet: FleetView;
  getFunction: (tenant: string, name: string) => Promise<FunctionRecord>;
  invokeTimeoutMs: number;
  createTimeoutMs: number;
  /** An instance whose host is silent this long past its TTL is replaced, its state lost (FLURRY_INSTANCE_LOST_MS). */
  instanceLostMs: number;
  log: Logger;
  /** Called whenever this gateway's requests in flight or held change (the load reporter publishes them). */
  onLoadChange?: () => void;
  /** Instances a tenant's services may scale to together, the sum of their max (FLURRY_QUOTA_SERVICE_INSTANCES); 0 or absent: no limit. */
  instanceQuota?: number;
  /** Counts service requests (metrics/gateway-metrics.ts). */
  metrics?: GatewayMetrics;
}

export async function openServices(deps: ServicesDeps): Promise<Services> {
  const { fabric, fleet, log, invokeTimeoutMs, createTimeoutMs, instanceLostMs } = deps;
  const store = await ServiceStore.open(fabric, log);
  const counts = new RequestCounts(deps.onLoadChange);
  const migrationHistory = new MigrationHistory();
  const scaling = new InstanceScaling({ fabric, fleet, store, counts, createTimeoutMs, invokeTimeoutMs, instanceLostMs, log });
  return {
    store,
    counts,
    scaling,
    records: new ServiceRecords({ store, scaling, counts, getFunction: deps.getFunction, instanceQuota: deps.instanceQuota }),
    router: new ServiceRouter({ fabric, fleet, store, scaling, counts, invokeTimeoutMs, createTimeoutMs, instanceLostMs, getFunction: deps.getFunction, log, metrics: deps.metrics }),
    migrations: new InstanceMigrations({ fabric, fleet, store, instanceLostMs, log, history: migrationHistory }),
    migrationHistory,
  };
}
