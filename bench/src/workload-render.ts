/**
 * The `render` workload (path tracer, functions/render) for the workloads
 * bench: the assimp Wuson model (extracted from Debian's assimp-testmodels
 * when first needed, as the test does), else the committed trefoil knot
 * (functions/examples/render.json); default 320x240, 48 samples, depth 4.
 * Results are the same when the PNGs are the same bytes.
 *
 * Tasks: task t of T renders the rows y with y mod T = t, so every task
 * samples the whole image and costs about the same. T is the largest divisor
 * of the height from 4 to 8 per clone (every task the same number of rows),
 * else 8 per clone (tasks differ by one row), and never more than the rows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assimpModels, repoRoot, WUSON_OBJ } from '@flurry/infra';
import type { Workload } from './workload-jobs.js';

export interface RenderSize { width: number; height: number; samples: number }

/** The largest divisor of `height` in [4 x clones, 8 x clones], else 8 x clones, and never more tasks than rows. */
export function renderTasks(height: number, clones: number): number {
  for (let t = Math.min(height, 8 * clones); t >= 4 * clones; t--) if (height % t === 0) return t;
  return Math.min(height, 8 * clones);
}

export function renderWorkload(fn: string, size: RenderSize): Workload & { describe: string } {
  let base: Record<string, unknown>;
  let scene: string;
  const models = assimpModels();
  if ('dir' in models) {
    base = { model: readFileSync(join(models.dir, WUSON_OBJ), 'utf8'), rotateY: 150 };
    scene = 'assimp Wuson (OBJ, 3,732 triangles)';
  } else {
    base = JSON.parse(readFileSync(join(repoRoot, 'functions', 'examples', 'render.json'), 'utf8')) as Record<string, unknown>;
    scene = `trefoil knot (functions/examples/render.json, 6,144 triangles; the Wuson model cannot be had: ${models.reason})`;
  }
  const maxDepth = 4;
  return {
    function: fn,
    init: { init: JSON.stringify({ ...base, ...size, maxDepth }) },
    tasks: (clones) => renderTasks(size.height, clones),
    same: (a, b) => a.equals(b),
    describe: `${scene}, ${size.width}x${size.height}, ${size.samples} samples, depth ${maxDepth}`,
  };
}
