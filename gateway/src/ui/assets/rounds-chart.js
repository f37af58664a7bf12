// The migration chart: pages sent in each pre-copy round, then in the pause (stop-and-copy), as bars (uPlot), on a
// log scale: round 1 sends every page, the later ones the few dirtied meanwhile, and whether they shrink is the point.
import uPlot from './uPlot.esm.js';

const WIDTH = 320;
const HEIGHT = 140;

/** A chart element for one migration entry (GET /v1/dashboard's `migrations[]`). */
export function roundsChart(m) {
  const n = m.rounds.length;
  // x: rounds 1..n, then n + 1 for the pause. One series per phase, so that each has its own colour.
  const x = [...Array(n + 1).keys()].map((i) => i + 1);
  // A log scale has no 0: a round that sent nothing has no bar (the list below the chart says 0).
  const bar = (pages) => (pages > 0 ? pages : null);
  const precopy = [...m.rounds.map((r) => bar(r.pages)), null];
  const pause = [...m.rounds.map(() => null), bar(m.finalPages)];
  const bars = uPlot.paths.bars({ size: [0.6, 40] });
  const el = document.createElement('div');
  el.className = 'chart';
  new uPlot({
    width: WIDTH,
    height: HEIGHT,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [0.5, n + 1.5] }, y: { distr: 3, range: (_u, _min, max) => [1, Math.max(10, max) * 2] } },
    axes: [
      { values: (_u, ticks) => ticks.map((t) => (t === n + 1 ? 'pause' : Number.isInteger(t) && t >= 1 && t <= n ? `r${t}` : '')), splits: () => x },
      { label: 'pages', size: 50 },
    ],
    series: [
      {},
      { label: 'pre-copy', fill: '#4c78a8', stroke: '#4c78a8', paths: bars, points: { show: false } },
      { label: 'pause', fill: '#e45756', stroke: '#e45756', paths: bars, points: { show: false } },
    ],
  }, [x, precopy, pause], el);
  return el;
}
