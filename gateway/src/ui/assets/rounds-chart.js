// The migration chart: pages sent in each pre-copy round, then in the pause (stop-and-copy), as bars (uPlot).
import uPlot from './uPlot.esm.js';

const WIDTH = 320;
const HEIGHT = 140;

/** A chart element for one migration entry (GET /v1/dashboard's `migrations[]`). */
export function roundsChart(m) {
  const n = m.rounds.length;
  // x: rounds 1..n, then n + 1 for the pause. One series per phase, so that each has its own colour.
  const x = [...Array(n + 1).keys()].map((i) => i + 1);
  const precopy = [...m.rounds.map((r) => r.pages), null];
  const pause = [...m.rounds.map(() => null), m.finalPages];
  const bars = uPlot.paths.bars({ size: [0.6, 40] });
  const el = document.createElement('div');
  el.className = 'chart';
  new uPlot({
    width: WIDTH,
    height: HEIGHT,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [0.5, n + 1.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
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
