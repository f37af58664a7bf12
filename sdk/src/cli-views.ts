/** What the CLI prints for each kind of record when not asked for JSON. */
import { formatBytes, formatDuration } from './human-units.js';
import type { JobEvent } from './jobs.js';
import { formatFields, formatTable } from './table.js';
import type { DataRecord, FunctionRecord, HostCapacity, HostDrainReport, HostMove, HostRecord, JobRecord, MigrationReport, ServiceRecord } from './types.js';
import { isFullHostRecord } from './hosts.js';

/** As core's WASM_PAGE_SIZE (the SDK depends on no Flurry package). */
const WASM_PAGE_SIZE = 65_536;
/** Enough hex digits to tell modules apart at a glance, like git's short hashes. */
const SHORT_DIGEST = 12;

export function functionsTable(functions: FunctionRecord[], now: number): string {
  return formatTable(
    [
      { header: 'NAME' },
      { header: 'DIGEST' },
      { header: 'SIZE', align: 'right' },
      { header: 'MEMORY', align: 'right' },
      { header: 'EXPORTS' },
      { header: 'UPDATED', align: 'right' },
    ],
    functions.map((fn) => [
      fn.name,
      fn.digest.slice(0, SHORT_DIGEST),
      formatBytes(fn.size),
      memoryRange(fn),
      fn.exports.join(','),
      `${formatDuration(now - fn.updatedAt)} ago`,
    ]),
  );
}

export function functionDetails(fn: FunctionRecord, now: number): string {
  return formatFields([
    ['name', fn.name],
    ['tenant', fn.tenant],
    ['digest', fn.digest],
    ['size', formatBytes(fn.size)],
    ['memory', `${memoryRange(fn)} (${fn.memory.initialPages}..${fn.memory.maximumPages} pages)`],
    ['limits', limitsText(fn.limits)],
    ['exports', fn.exports.join(', ')],
    ['created', `${new Date(fn.createdAt).toISOString()} (${formatDuration(now - fn.createdAt)} ago)`],
    ['updated', `${new Date(fn.updatedAt).toISOString()} (${formatDuration(now - fn.updatedAt)} ago)`],
  ]);
}

/** A function's own limits (docs/manifests.md), or that it has the fleet's. */
function limitsText(limits: FunctionRecord['limits']): string {
  const parts = [
    limits?.timeoutMs !== undefined && `timeout ${limits.timeoutMs} ms`,
    limits?.memoryBytes !== undefined && `memory ${formatBytes(limits.memoryBytes)}`,
    limits?.outputBytes !== undefined && `output ${formatBytes(limits.outputBytes)}`,
  ].filter((part): part is string => part !== false);
  if (parts.length === 0) return "the fleet's defaults";
  return parts.length < 3 ? `${parts.join(', ')} (the rest: the fleet's defaults)` : parts.join(', ');
}

export function dataTable(records: DataRecord[], now: number): string {
  return formatTable(
    [{ header: 'NAME' }, { header: 'SIZE', align: 'right' }, { header: 'DIGEST' }, { header: 'CREATED', align: 'right' }],
    records.map((d) => [d.name, formatBytes(d.bytes), d.digest.slice(0, 'sha256:'.length + SHORT_DIGEST), `${formatDuration(now - d.createdAt)} ago`]),
  );
}

export function deployedLine(fn: FunctionRecord): string {
  return `deployed ${fn.name}  digest ${fn.digest.slice(0, SHORT_DIGEST)}  ${formatBytes(fn.size)}  exports ${fn.exports.join(',')}\n`;
}

/** A user key sees capacity figures only: the columns about what hosts hold show `-` then. */
export function hostsTable(hosts: (HostRecord | HostCapacity)[], now: number): string {
  return formatTable(
    [
      { header: 'ID' },
      { header: 'HOSTNAME' },
      { header: 'PID', align: 'right' },
      { header: 'SLOTS', align: 'right' },
      { header: 'RUNNING', align: 'right' },
      { header: 'WARM', align: 'right' },
      { header: 'PAGER' },
      { header: 'STATE' },
      { header: 'INSTANCES', align: 'right' },
      { header: 'RELEASABLE' },
      { header: 'HEARTBEAT', align: 'right' },
    ],
    hosts.map((host) => {
      const full = isFullHostRecord(host) ? host : undefined;
      return [
        host.id,
        full?.hostname ?? '-',
        full ? String(full.pid) : '-',
        String(host.guestSlots),
        String(host.runningGuests),
        full ? String(full.warm.length) : '-',
        host.pager,
        host.state ?? (host.draining ? 'draining' : 'active'),
        full ? String(full.instances?.length ?? 0) : '-',
        host.releasable ? 'yes' : 'no',
        `${formatDuration(now - host.heartbeatAt)} ago`,
      ];
    }),
  );
}

export function servicesTable(services: ServiceRecord[], now: number): string {
  return formatTable(
    [
      { header: 'NAME' },
      { header: 'FUNCTION' },
      { header: 'DIGEST' },
      { header: 'INSTANCES', align: 'right' },
      { header: 'MIN', align: 'right' },
      { header: 'MAX', align: 'right' },
      { header: 'TARGET', align: 'right' },
      { header: 'CREATED', align: 'right' },
    ],
    services.map((svc) => [
      svc.name,
      svc.function,
      svc.digest.slice(0, SHORT_DIGEST),
      String(svc.instances.length),
      String(svc.min),
      String(svc.max),
      String(svc.targetConcurrency),
      `${formatDuration(now - svc.createdAt)} ago`,
    ]),
  );
}

/** A service's settings as labelled fields, then one row per instance. */
export function serviceDetails(svc: ServiceRecord, now: number): string {
  const fields: [string, string][] = [
    ['name', svc.name],
    ['function', `${svc.function} (${svc.digest.slice(0, SHORT_DIGEST)})`],
    ['scale', `min ${svc.min}, max ${svc.max}, target ${svc.targetConcurrency} in flight per instance`],
    ['init', svc.init === undefined ? 'none' : formatBytes(base64Length(svc.init))],
    ['created', `${new Date(svc.createdAt).toISOString()} (${formatDuration(now - svc.createdAt)} ago)`],
    ['instances', String(svc.instances.length)],
  ];
  if (svc.instances.length === 0) return formatFields(fields);
  const instances = formatTable(
    [{ header: 'INSTANCE' }, { header: 'HOST' }, { header: 'IN FLIGHT', align: 'right' }, { header: 'AGE', align: 'right' }, { header: 'MIGRATING' }],
    svc.instances.map((instance) => [
      instance.id,
      instance.host,
      String(instance.inFlight),
      formatDuration(now - instance.createdAt),
      instance.migrating === undefined ? '' : `to ${instance.migrating.target}`,
    ]),
  );
  return `${formatFields(fields)}\n${instances}`;
}

/** One line after a create or a scale. */
export function serviceLine(verb: string, svc: ServiceRecord): string {
  const count = svc.instances.length;
  return `${verb} ${svc.name}  function ${svc.function}  min ${svc.min}  max ${svc.max}  target ${svc.targetConcurrency}  ${count} instance${count === 1 ? '' : 's'}\n`;
}

/** A migration's report: where, how many rounds, the pause, the whole and the bytes. */
export function migrationDetails(instanceId: string, report: MigrationReport): string {
  const rounds = report.rounds.length;
  const d = report.downtime;
  return formatFields([
    ['instance', `${instanceId}: ${report.source} -> ${report.target}`],
    ['rounds', `${rounds} pre-copy round${rounds === 1 ? '' : 's'} (${report.stopReason}), then ${report.finalPages} pages paused${report.mode === undefined ? '' : `; dirty tracking ${report.mode}`}`],
    ['downtime', `${report.downtimeMs.toFixed(1)} ms (stop ${d.stopMs.toFixed(1)}, send ${d.sendMs.toFixed(1)}, commit ${d.commitMs.toFixed(1)}, release ${d.releaseMs.toFixed(1)})`],
    ['total', `${report.totalMs.toFixed(1)} ms`],
    ['bytes', formatBytes(report.totalBytes)],
    ['forwarded', `${report.forwarded} request${report.forwarded === 1 ? '' : 's'}`],
  ]);
}

/** A drain's moves, one line each, and the instances that could not be moved. */
export function drainDetails(drain: HostDrainReport): string {
  const state = drain.failed.length === 0 ? 'drained' : 'still draining';
  const moved = drain.moved.filter((move) => move.ok);
  const lines = [`${drain.hostId} ${state}: ${moved.length} instance${moved.length === 1 ? '' : 's'} moved, ${drain.failed.length} failed`];
  for (const move of moved) lines.push(`  ${moveLine(move)}`);
  for (const failure of drain.failed) lines.push(`  ${failure.instanceId} not moved: ${failure.error}`);
  return `${lines.join('\n')}\n`;
}

function moveLine(move: HostMove): string {
  const downtime = move.downtimeMs === undefined ? '' : `, downtime ${move.downtimeMs.toFixed(1)} ms`;
  return `${move.instanceId} (${move.service}) ${move.from} -> ${move.to ?? '?'}${downtime}`;
}

/** Decoded size of a base64 text, without decoding it. */
function base64Length(text: string): number {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}

function memoryRange(fn: FunctionRecord): string {
  return `${formatBytes(fn.memory.initialPages * WASM_PAGE_SIZE)} / ${formatBytes(fn.memory.maximumPages * WASM_PAGE_SIZE)}`;
}

export function jobsTable(jobs: JobRecord[], now: number): string {
  return formatTable(
    [
      { header: 'ID' },
      { header: 'FUNCTION' },
      { header: 'STATE' },
      { header: 'DONE', align: 'right' },
      { header: 'FAILED', align: 'right' },
      { header: 'PAGES', align: 'right' },
      { header: 'CREATED', align: 'right' },
      { header: 'TOOK', align: 'right' },
    ],
    jobs.map((job) => [
      job.id,
      job.function,
      job.state,
      `${job.counts.done}/${job.clones}`,
      String(job.counts.failed),
      String(job.pagesFetched),
      `${formatDuration(now - job.createdAt)} ago`,
      job.finishedAt === undefined ? '' : formatDuration(job.finishedAt - (job.startedAt ?? job.createdAt)),
    ]),
  );
}

/** A job's record as labelled fields, then one row per clone. */
export function jobDetails(job: JobRecord, now: number): string {
  const fields: [string, string][] = [
    ['id', job.id],
    ['function', `${job.function} (${job.digest.slice(0, SHORT_DIGEST)})`],
    ['state', job.state],
    ['clones', `${job.clones}: ${job.counts.done} done, ${job.counts.failed} failed, ${job.counts.running} running, ${job.counts.pending} pending`],
    ...(job.tasks ? [['tasks', taskCounts(job.tasks)] as [string, string]] : []),
    ['created', `${new Date(job.createdAt).toISOString()} (${formatDuration(now - job.createdAt)} ago)`],
  ];
  if (job.startedAt !== undefined) fields.push(['started', new Date(job.startedAt).toISOString()]);
  if (job.finishedAt !== undefined) {
    fields.push(['finished', `${new Date(job.finishedAt).toISOString()} (took ${formatDuration(job.finishedAt - (job.startedAt ?? job.createdAt))})`]);
  }
  if (job.boot !== undefined) fields.push(['boot', job.boot]);
  if (job.initData !== undefined) fields.push(['init data', job.initData]);
  if (job.parentHost !== undefined) fields.push(['parent host', job.parentHost]);
  if (job.parentReused !== undefined) {
    fields.push(['parent', job.parentReused ? 'reused (kept from an earlier job)' : `booted: init ${job.initMs ?? '?'} ms, snapshot ${job.snapshotMs ?? '?'} ms`]);
  }
  if (job.snapshotId !== undefined) fields.push(['snapshot', job.snapshotId]);
  fields.push(['pages fetched', String(job.pagesFetched)]);
  if (job.error !== undefined) fields.push(['error', `${job.error.code}: ${job.error.message}`]);
  if (job.clonesDetail.length === 0) return formatFields(fields);
  const clones = formatTable(
    [
      { header: 'CLONE', align: 'right' },
      { header: 'STATE' },
      { header: 'HOST' },
      { header: 'ATTEMPTS', align: 'right' },
      { header: 'RUN', align: 'right' },
      { header: 'PAGES', align: 'right' },
      { header: 'ERROR' },
    ],
    job.clonesDetail.map((clone) => [
      String(clone.index),
      clone.state,
      clone.host ?? '',
      String(clone.attempts),
      clone.runMs === undefined ? '' : formatDuration(clone.runMs),
      clone.pages === undefined ? '' : String(clone.pages.multicast + clone.pages.unicast),
      clone.error === undefined ? '' : `${clone.error.code}: ${clone.error.message}`,
    ]),
  );
  return `${formatFields(fields)}\n${clones}`;
}

/** Each failed clone's error, from the record's `errors` or, failing that, its clones. */
export function cloneErrors(job: JobRecord): { index: number; code: string; message: string }[] {
  if (job.errors !== undefined && job.errors.length > 0) return job.errors;
  return job.clonesDetail.flatMap((clone) => (clone.error === undefined ? [] : [{ index: clone.index, ...clone.error }]));
}

/** A job's tasks in words: `flurry job get`. */
function taskCounts(t: NonNullable<JobRecord['tasks']>): string {
  return `${t.total}: ${t.done} done, ${t.running} running, ${t.backups} backups, ${t.duplicates} duplicate results dropped, ${t.failures} failures`;
}

/** One event as one line of text (`job run` on a pipe, `job events`). */
export function eventLine(event: JobEvent): string {
  switch (event.kind) {
    case 'state': {
      const job = event.job;
      return `state ${job.state}: job ${job.id}, ${job.function}, ${job.clones} clones (${job.counts.done} done, ${job.counts.failed} failed)`;
    }
    case 'placed':
      return `placed parent on ${event.host}`;
    case 'snapshot':
      return event.reused
        ? `snapshot ${event.snapshotId} on ${event.host}: kept parent reused (no init)`
        : `snapshot ${event.snapshotId} on ${event.host}: init ${formatDuration(event.initMs)}, snapshot ${formatDuration(event.snapshotMs)}`;
    case 'forked': {
      const count = event.indices?.length ?? 0;
      return `forked ${count} clone${count === 1 ? '' : 's'} on ${event.host}, running in ${formatDuration(event.runningMs)}`;
    }
    case 'progress':
      return event.index === undefined ? `progress tasks ${event.done}/${event.total}` : `progress clone ${event.index}: ${event.done}/${event.total}`;
    case 'clone.done': {
      const { index, host, runMs, pages } = event;
      const fetched = pages === undefined ? '' : `, ${(pages.multicast ?? 0) + (pages.unicast ?? 0)} pages fetched`;
      return `clone ${index} done${host ? ` on ${host}` : ''}${runMs !== undefined ? ` in ${formatDuration(runMs)}` : ''}${fetched}`;
    }
    case 'clone.failed': {
      const { index, host, error, attempt, final, task } = event;
      const reason = error ? `: ${error.code}: ${error.message}` : '';
      if (task !== undefined) return `task ${task} failed in clone ${index}${host ? ` on ${host}` : ''}${reason}${attempt !== undefined ? ` (failure ${attempt})` : ''}${final === false ? ', retrying' : ''}`;
      return `clone ${index} failed${host ? ` on ${host}` : ''}${reason}${attempt !== undefined ? ` (attempt ${attempt})` : ''}${final === false ? ', retrying' : ''}`;
    }
    case 'clone.lost':
      return `clone ${event.index} lost${event.host ? ` on ${event.host}` : ''}: ${event.reason}; forking it again`;
    case 'reduced':
      return `reduced: ${formatBytes(event.bytes)}`;
    case 'done': {
      const job = event.job;
      if (!job) return 'done';
      const took = job.finishedAt === undefined ? '' : ` in ${formatDuration(job.finishedAt - (job.startedAt ?? job.createdAt))}`;
      return `done${took}: ${job.counts.done}/${job.clones} clones, ${job.pagesFetched} pages fetched`;
    }
    case 'failed': {
      const error = event.error ?? event.job?.error;
      return error ? `failed: ${error.code}: ${error.message}` : 'failed';
    }
    case 'cancelled':
      return 'cancelled';
  }
}

/** One host as labelled fields: what `host get` prints. */
export function hostDetails(host: HostRecord | HostCapacity, now: number): string {
  const full = isFullHostRecord(host) ? host : undefined;
  const state = host.state ?? (host.draining ? 'draining' : 'active');
  const fields: [string, string][] = [['id', host.id]];
  if (full) fields.push(['hostname', `${full.hostname} (pid ${full.pid})`]);
  fields.push(
    ['state', `${state}${full?.stateReason ? `: ${full.stateReason}` : ''}${host.releasable ? ' (releasable)' : ''}`],
    ['slots', `${host.runningGuests} of ${host.guestSlots} running`],
    ['machine', `${host.cores} cores, ${formatBytes(host.memoryBytes)}`],
    ['pager', host.pager],
  );
  if (host.memoryBudget) fields.push(['memory budget', `${formatBytes(host.memoryBudget.usedBytes)} of ${formatBytes(host.memoryBudget.budgetBytes)} used`]);
  if (full) {
    fields.push(['warm', full.warm.map((w) => `${w.tenant}/${w.name}`).join(', ') || 'none']);
    fields.push(['kept parents', String(full.parents?.length ?? 0)]);
    fields.push(['instances', (full.instances ?? []).map((i) => `${i.instanceId} (${i.service})`).join(', ') || 'none']);
  }
  fields.push(['started', `${new Date(host.startedAt).toISOString()} (${formatDuration(now - host.startedAt)} ago)`]);
  fields.push(['heartbeat', `${formatDuration(now - host.heartbeatAt)} ago`]);
  return formatFields(fields);
}

/** Every instance of the given services, a row each: what `instance ls` prints. */
export function instancesTable(services: ServiceRecord[], now: number): string {
  return formatTable(
    [{ header: 'INSTANCE' }, { header: 'SERVICE' }, { header: 'HOST' }, { header: 'IN FLIGHT', align: 'right' }, { header: 'AGE', align: 'right' }, { header: 'MIGRATING' }],
    services.flatMap((svc) =>
      svc.instances.map((instance) => [
        instance.id,
        svc.name,
        instance.host,
        String(instance.inFlight),
        formatDuration(now - instance.createdAt),
        instance.migrating === undefined ? '' : `to ${instance.migrating.target}`,
      ]),
    ),
  );
}
