/**
 * The dashboard view's shape (GET /v1/dashboard and its event stream),
 * declared once: the API document and the response check are written from
 * it, and the types dashboard-view.ts and migration-history.ts build are
 * inferred from it. Strict objects: a field the view sends that is not
 * declared here fails the integration suites' response check.
 */
import { z } from '@hono/zod-openapi';
import { HostMove, WarmFunction } from '../api/records.js';

const int = z.number().int();

export const MigrationEntry = z.strictObject({
  at: z.number().openapi({ description: 'When it committed' }),
  tenant: z.string(),
  service: z.string(),
  instanceId: z.string(),
  source: z.string(),
  target: z.string(),
  rounds: z.array(z.strictObject({ pages: int, ms: z.number() })).openapi({ description: 'Pages sent in each pre-copy round, and how long it took' }),
  finalPages: int.openapi({ description: 'Pages sent during the pause (stop-and-copy)' }),
  stopReason: z.string().openapi({ description: 'Why the pre-copy stopped: `budget`, `not-shrinking`, `max-rounds` or `stop-and-copy`' }),
  downtimeMs: z.number().openapi({ description: 'The pause: requests to the instance were held this long' }),
  totalMs: z.number(),
  totalBytes: z.number(),
  forwarded: int.openapi({ description: 'Requests held during the pause and forwarded to the target' }),
}).openapi('DashboardMigration', { description: 'A live migration this gateway drove' });

const KeptParent = z.strictObject({
  tenant: z.string(), moduleDigest: z.string(), initDigest: z.string(), function: z.string(), snapshotId: z.string(),
  memoryBytes: z.number(), holders: int.openapi({ description: 'Jobs holding it now; 0 when idle' }), idleSince: z.number().optional(),
});

export const DashboardHost = z.strictObject({
  id: z.string(),
  state: z.enum(['active', 'draining', 'drained']),
  stateReason: z.string().optional().openapi({ description: 'Why it drains (admins only)' }),
  pager: z.enum(['userfaultfd', 'portable']),
  cores: int,
  guestSlots: int,
  runningGuests: int,
  memoryBudget: z.strictObject({ budgetBytes: z.number(), usedBytes: z.number() }).optional(),
  heartbeatAt: z.number(),
  releasable: z.boolean(),
  warm: z.array(WarmFunction).openapi({ description: 'Warm parents: a user sees its own tenant\'s only' }),
  parents: z.array(KeptParent).openapi({ description: 'Kept job parents: a user sees its own tenant\'s only' }),
  instances: z.array(z.strictObject({
    tenant: z.string(), service: z.string(), instanceId: z.string(), requests: int.openapi({ description: 'Requests it ran on this host' }),
    perSecond: z.number().optional().openapi({ description: 'Requests per second over the last 5 s of heartbeats' }), migrating: z.boolean().optional(),
  })).openapi({ description: 'Service instances: a user sees its own tenant\'s only' }),
}).openapi('DashboardHost', { description: 'A live host as the dashboard shows it' });

export const DashboardService = z.strictObject({
  name: z.string(),
  function: z.string(),
  min: int,
  max: int,
  instances: z.array(z.strictObject({
    id: z.string(), host: z.string(), inFlight: int.openapi({ description: 'Requests this gateway has in flight to it' }),
    perSecond: z.number().optional(), migrating: z.strictObject({ target: z.string(), since: z.number() }).optional(),
  })),
}).openapi('DashboardService', { description: 'One of the caller\'s services and its instances' });

export const Dashboard = z.strictObject({
  at: z.number(),
  caller: z.strictObject({ tenant: z.string(), role: z.enum(['user', 'admin']) }),
  hosts: z.array(DashboardHost),
  services: z.array(DashboardService).optional().openapi({ description: 'Absent when the gateway runs no services' }),
  migrations: z.array(MigrationEntry).optional().openapi({ description: 'The latest migrations this gateway drove, newest last: a user\'s own instances\', every one for an admin' }),
  moves: z.array(HostMove).optional().openapi({ description: 'The controller\'s consolidation and drain moves, newest last (admins only)' }),
}).openapi('Dashboard', { description: 'The fleet as the caller may see it (docs/dashboard.md)' });

export type MigrationEntry = z.infer<typeof MigrationEntry>;
export type DashboardHost = z.infer<typeof DashboardHost>;
export type DashboardService = z.infer<typeof DashboardService>;
export type Dashboard = z.infer<typeof Dashboard>;
