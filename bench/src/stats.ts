/** Latency statistics for benchmarks. */

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

export function summarize(samplesMs: number[]): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return {
    count: s.length,
    p50Ms: q(0.5),
    p90Ms: q(0.9),
    p99Ms: q(0.99),
    meanMs: s.reduce((a, b) => a + b, 0) / (s.length || 1),
    maxMs: s[s.length - 1] ?? NaN,
  };
}

export const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Runs `op` from `clients` concurrent loops for `durationMs` (after `warmupMs`), returning latencies and throughput. */
export async function closedLoop(op: () => Promise<void>, clients: number, durationMs: number, warmupMs = 500): Promise<{ latencies: number[]; rps: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const warmEnd = performance.now() + warmupMs;
  const end = warmEnd + durationMs;
  let measured = 0;
  const loop = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        await op();
      } catch {
        errors++;
      }
      const t1 = performance.now();
      if (t0 >= warmEnd) {
        latencies.push(t1 - t0);
        measured++;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  return { latencies, rps: measured / (durationMs / 1000), errors };
}
