// One function per panel: the panel's body made from GET /v1/dashboard's view (or the jobs' state, jobs.js).
import { ago, bar, clock, h, mib, ms, table } from './dom.js';
import { roundsChart } from './rounds-chart.js';

export function hostsPanel(hosts, now) {
  return table(['host', 'state', 'pager', 'slots in use', 'memory budget', 'warm parents', 'kept parents', 'service instances', 'heartbeat'],
    hosts.map((x) => h('tr', { 'data-host': x.id },
      h('td', {}, x.id),
      h('td', { class: `state ${x.state}`, title: x.stateReason }, x.state, x.releasable ? ' (releasable)' : ''),
      h('td', {}, x.pager),
      h('td', {}, bar(x.guestSlots ? x.runningGuests / x.guestSlots : 0, `${x.runningGuests} / ${x.guestSlots}`)),
      h('td', {}, x.memoryBudget ? bar(x.memoryBudget.usedBytes / x.memoryBudget.budgetBytes, `${mib(x.memoryBudget.usedBytes)} / ${mib(x.memoryBudget.budgetBytes)}`, 'memory') : '–'),
      h('td', {}, list(x.warm.map((w) => `${w.tenant}/${w.name}`))),
      h('td', {}, list(x.parents.map((p) => `${p.function} · ${mib(p.memoryBytes)} · ${p.holders > 0 ? `held by ${p.holders}` : `idle ${ago(p.idleSince ?? now, now).replace(' ago', '')}`}`))),
      h('td', {}, list(x.instances.map((i) => `${i.service}/${i.instanceId}${i.migrating ? ' (migrating)' : ''} · ${rate(i.perSecond)}`))),
      h('td', {}, ago(x.heartbeatAt, now)))),
    'No live hosts.');
}

export function servicesPanel(services) {
  if (services === undefined) return h('p', { class: 'empty' }, 'This gateway runs no services.');
  if (services.length === 0) return h('p', { class: 'empty' }, 'No services.');
  return h('div', {}, services.map((s) => h('div', { class: 'service', 'data-service': s.name },
    h('h3', {}, s.name, h('span', { class: 'muted' }, ` ${s.function} · min ${s.min}, max ${s.max} · ${s.instances.length} instance${s.instances.length === 1 ? '' : 's'}`)),
    table(['instance', 'host', 'in flight', 'requests/s', ''],
      s.instances.map((i) => [i.id, i.host, String(i.inFlight), rate(i.perSecond), i.migrating ? `migrating to ${i.migrating.target}` : '']),
      'No instances yet.'))));
}

/** `charts` keeps each migration's chart element across renders (a chart is drawn once). */
export function migrationsPanel(migrations, charts) {
  if (migrations === undefined) return h('p', { class: 'empty' }, 'This gateway runs no services.');
  if (migrations.length === 0) return h('p', { class: 'empty' }, 'No migration driven by this gateway yet.');
  const key = (m) => `${m.instanceId}@${m.at}`;
  const shown = new Set(migrations.map(key));
  for (const k of charts.keys()) if (!shown.has(k)) charts.delete(k);
  return h('div', { class: 'cards' }, [...migrations].reverse().map((m) => {
    if (!charts.has(key(m))) charts.set(key(m), roundsChart(m));
    const pages = m.rounds.reduce((sum, r) => sum + r.pages, 0) + m.finalPages;
    return h('article', { class: 'migration', 'data-instance': m.instanceId },
      h('h3', {}, `${m.service}/${m.instanceId}`),
      h('p', {}, `${m.source} → ${m.target} · ${clock(m.at)}`),
      h('p', { class: 'figures' },
        h('span', { class: 'rounds' }, `${m.rounds.length} round${m.rounds.length === 1 ? '' : 's'}`), ' · ',
        h('span', { class: 'pause' }, `pause ${ms(m.downtimeMs)}`), ` · total ${ms(m.totalMs)} · ${pages} pages (${mib(m.totalBytes)}) · stop: ${m.stopReason}`,
        m.forwarded ? ` · ${m.forwarded} request${m.forwarded === 1 ? '' : 's'} held` : ''),
      charts.get(key(m)),
      h('ol', { class: 'round-list' }, m.rounds.map((r) => h('li', {}, `${r.pages} pages, ${ms(r.ms)}`)), h('li', { class: 'pause-item' }, `pause: ${m.finalPages} pages`)));
  }));
}

export function movesPanel(moves, role) {
  if (role !== 'admin') return h('p', { class: 'empty' }, 'Consolidation moves are shown to admin keys only.');
  return table(['when', 'kind', 'instance', 'from → to', 'reason', 'outcome'],
    [...(moves ?? [])].reverse().map((m) => [clock(m.at), m.kind, `${m.tenant}/${m.service}/${m.instanceId}`, `${m.from} → ${m.to ?? '–'}`, m.reason,
      m.ok ? `moved${m.downtimeMs !== undefined ? `, pause ${ms(m.downtimeMs)}` : ''}` : h('span', { class: 'error' }, m.error ?? 'failed')]),
    'No moves yet.');
}

/** `jobs`: jobs.js's views, newest first. */
export function jobsPanel(jobs, now) {
  return table(['job', 'function', 'state', 'progress', 'clones', 'time'],
    jobs.map(({ job, progress, live }) => h('tr', { 'data-job': job.id },
      h('td', {}, job.id, live ? h('span', { class: 'live', title: 'following its event stream' }, ' ●') : ''),
      h('td', {}, job.function),
      h('td', { class: `state ${job.state}`, title: job.error ? `${job.error.code}: ${job.error.message}` : undefined }, job.state),
      h('td', {}, h('span', { class: 'progress' }, bar(progress.fraction, `${Math.floor(progress.fraction * 100)}%`))),
      h('td', {}, h('span', { class: 'clones' }, job.clonesDetail.map((c) => h('span', {
        class: `clone ${c.state}`,
        title: `clone ${c.index}: ${c.state}${c.host ? ` on ${c.host}` : ''}${progress.perClone.has(c.index) && c.state === 'running' ? ` ${Math.floor(progress.perClone.get(c.index) * 100)}%` : ''}${c.attempts > 1 ? `, ${c.attempts} attempts` : ''}`,
      }))), h('span', { class: 'muted' }, ` ${job.counts.done}/${job.clones} done${job.counts.failed ? `, ${job.counts.failed} failed` : ''}`)),
      h('td', {}, ms((job.finishedAt ?? now) - (job.startedAt ?? job.createdAt))))),
    'No jobs yet.');
}

function list(items) {
  return items.length === 0 ? h('span', { class: 'muted' }, '–') : h('ul', { class: 'plain' }, items.map((x) => h('li', {}, x)));
}

function rate(perSecond) {
  return perSecond === undefined ? '–' : `${perSecond} req/s`;
}
