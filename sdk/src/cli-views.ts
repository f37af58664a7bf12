/** What the CLI prints for each kind of record when not asked for JSON. */
import { formatBytes, formatDuration } from './human-units.js';
import { formatFields, formatTable } from './table.js';
import type { FunctionRecord, HostRecord } from './types.js';

const WASM_PAGE_BYTES = 65_536;
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
    ['exports', fn.exports.join(', ')],
    ['created', `${new Date(fn.createdAt).toISOString()} (${formatDuration(now - fn.createdAt)} ago)`],
    ['updated', `${new Date(fn.updatedAt).toISOString()} (${formatDuration(now - fn.updatedAt)} ago)`],
  ]);
}

export function deployedLine(fn: FunctionRecord): string {
  return `deployed ${fn.name}  digest ${fn.digest.slice(0, SHORT_DIGEST)}  ${formatBytes(fn.size)}  exports ${fn.exports.join(',')}\n`;
}

export function hostsTable(hosts: HostRecord[], now: number): string {
  return formatTable(
    [
      { header: 'ID' },
      { header: 'HOSTNAME' },
      { header: 'PID', align: 'right' },
      { header: 'SLOTS', align: 'right' },
      { header: 'RUNNING', align: 'right' },
      { header: 'WARM', align: 'right' },
      { header: 'PAGER' },
      { header: 'DRAINING' },
      { header: 'HEARTBEAT', align: 'right' },
    ],
    hosts.map((host) => [
      host.id,
      host.hostname,
      String(host.pid),
      String(host.guestSlots),
      String(host.runningGuests),
      String(host.warm.length),
      host.pager,
      host.draining ? 'yes' : 'no',
      `${formatDuration(now - host.heartbeatAt)} ago`,
    ]),
  );
}

function memoryRange(fn: FunctionRecord): string {
  return `${formatBytes(fn.memory.initialPages * WASM_PAGE_BYTES)} / ${formatBytes(fn.memory.maximumPages * WASM_PAGE_BYTES)}`;
}
