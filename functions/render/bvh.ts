// A bounding-volume hierarchy over triangles, built with a binned surface
// area heuristic (16 bins on the longest centroid axis, leaves of at most 4
// triangles; halves below depth 48), plus the ray queries: closest hit (Möller–Trumbore) and any
// hit (shadow rays). Triangles are stored in leaf order.

const BINS = 16;
const LEAF_MAX = 4;
const EPS: f64 = 1e-9;

export class Hit {
  t: f64 = 0;
  u: f64 = 0;
  v: f64 = 0;
  tri: i32 = -1;
}

export class Bvh {
  /** Per node: min xyz, max xyz. */
  bounds: Array<f64> = new Array<f64>();
  /** Per node: the first child (inner) or first triangle (leaf). */
  first: Array<i32> = new Array<i32>();
  /** Per node: triangle count (leaf) or 0 (inner; children are first, first + 1). */
  count: Array<i32> = new Array<i32>();
  /** Per triangle in leaf order: v0, edge1, edge2 (9 values). */
  tris: StaticArray<f64> = new StaticArray<f64>(0);
  /** Per triangle in leaf order: the original triangle index. */
  order: StaticArray<i32> = new StaticArray<i32>(0);
  get nodeCount(): i32 { return this.count.length; }
  depth: i32 = 0;

  constructor(positions: Array<f64>, triangles: Array<i32>) {
    let n = triangles.length / 3;
    let cent = new StaticArray<f64>(n * 3);
    let tb = new StaticArray<f64>(n * 6);
    let idx = new StaticArray<i32>(n);
    for (let i = 0; i < n; i++) {
      idx[i] = i;
      for (let a = 0; a < 3; a++) {
        let x0 = positions[triangles[3 * i] * 3 + a];
        let x1 = positions[triangles[3 * i + 1] * 3 + a];
        let x2 = positions[triangles[3 * i + 2] * 3 + a];
        let lo = min(x0, min(x1, x2)), hi = max(x0, max(x1, x2));
        tb[6 * i + a] = lo;
        tb[6 * i + 3 + a] = hi;
        cent[3 * i + a] = (lo + hi) * 0.5;
      }
    }
    // Node 0 is the root; build iteratively with an explicit stack.
    this.pushNode();
    let stack = new Array<i32>(); // node, start, end, depth
    stack.push(0); stack.push(0); stack.push(n); stack.push(1);
    let binCount = new StaticArray<i32>(BINS);
    let binBox = new StaticArray<f64>(BINS * 6);
    let rightArea = new StaticArray<f64>(BINS);
    let rightCount = new StaticArray<i32>(BINS);
    while (stack.length > 0) {
      let depth = stack.pop();
      let end = stack.pop();
      let start = stack.pop();
      let node = stack.pop();
      if (depth > this.depth) this.depth = depth;
      // Bounds of the triangles and of their centroids.
      let b = this.bounds;
      let cminx = Infinity, cminy = Infinity, cminz = Infinity, cmaxx = -Infinity, cmaxy = -Infinity, cmaxz = -Infinity;
      let bminx = Infinity, bminy = Infinity, bminz = Infinity, bmaxx = -Infinity, bmaxy = -Infinity, bmaxz = -Infinity;
      for (let k = start; k < end; k++) {
        let i = idx[k];
        bminx = min(bminx, tb[6 * i]); bminy = min(bminy, tb[6 * i + 1]); bminz = min(bminz, tb[6 * i + 2]);
        bmaxx = max(bmaxx, tb[6 * i + 3]); bmaxy = max(bmaxy, tb[6 * i + 4]); bmaxz = max(bmaxz, tb[6 * i + 5]);
        cminx = min(cminx, cent[3 * i]); cminy = min(cminy, cent[3 * i + 1]); cminz = min(cminz, cent[3 * i + 2]);
        cmaxx = max(cmaxx, cent[3 * i]); cmaxy = max(cmaxy, cent[3 * i + 1]); cmaxz = max(cmaxz, cent[3 * i + 2]);
      }
      b[6 * node] = bminx; b[6 * node + 1] = bminy; b[6 * node + 2] = bminz;
      b[6 * node + 3] = bmaxx; b[6 * node + 4] = bmaxy; b[6 * node + 5] = bmaxz;
      let count = end - start;
      let ex = cmaxx - cminx, ey = cmaxy - cminy, ez = cmaxz - cminz;
      let axis = ex >= ey && ex >= ez ? 0 : ey >= ez ? 1 : 2;
      let lo = axis == 0 ? cminx : axis == 1 ? cminy : cminz;
      let extent = axis == 0 ? ex : axis == 1 ? ey : ez;
      if (count <= LEAF_MAX || extent <= 0) {
        this.first[node] = start;
        this.count[node] = count;
        continue;
      }
      // Bin the centroids and sweep for the cheapest split.
      for (let j = 0; j < BINS; j++) {
        binCount[j] = 0;
        binBox[6 * j] = Infinity; binBox[6 * j + 1] = Infinity; binBox[6 * j + 2] = Infinity;
        binBox[6 * j + 3] = -Infinity; binBox[6 * j + 4] = -Infinity; binBox[6 * j + 5] = -Infinity;
      }
      let scale = <f64>BINS / extent;
      for (let k = start; k < end; k++) {
        let i = idx[k];
        let j = min(BINS - 1, <i32>((cent[3 * i + axis] - lo) * scale));
        binCount[j]++;
        for (let a = 0; a < 3; a++) {
          binBox[6 * j + a] = min(binBox[6 * j + a], tb[6 * i + a]);
          binBox[6 * j + 3 + a] = max(binBox[6 * j + 3 + a], tb[6 * i + 3 + a]);
        }
      }
      let rx0 = Infinity, ry0 = Infinity, rz0 = Infinity, rx1 = -Infinity, ry1 = -Infinity, rz1 = -Infinity;
      let rc = 0;
      for (let j = BINS - 1; j > 0; j--) {
        rc += binCount[j];
        if (binCount[j] > 0) {
          rx0 = min(rx0, binBox[6 * j]); ry0 = min(ry0, binBox[6 * j + 1]); rz0 = min(rz0, binBox[6 * j + 2]);
          rx1 = max(rx1, binBox[6 * j + 3]); ry1 = max(ry1, binBox[6 * j + 4]); rz1 = max(rz1, binBox[6 * j + 5]);
        }
        rightCount[j] = rc;
        rightArea[j] = rc > 0 ? area(rx0, ry0, rz0, rx1, ry1, rz1) : 0;
      }
      let lx0 = Infinity, ly0 = Infinity, lz0 = Infinity, lx1 = -Infinity, ly1 = -Infinity, lz1 = -Infinity;
      let lc = 0;
      let best = Infinity;
      let bestSplit = -1;
      for (let j = 0; j < BINS - 1; j++) {
        lc += binCount[j];
        if (binCount[j] > 0) {
          lx0 = min(lx0, binBox[6 * j]); ly0 = min(ly0, binBox[6 * j + 1]); lz0 = min(lz0, binBox[6 * j + 2]);
          lx1 = max(lx1, binBox[6 * j + 3]); ly1 = max(ly1, binBox[6 * j + 4]); lz1 = max(lz1, binBox[6 * j + 5]);
        }
        if (lc == 0 || rightCount[j + 1] == 0) continue;
        let cost = <f64>lc * area(lx0, ly0, lz0, lx1, ly1, lz1) + <f64>rightCount[j + 1] * rightArea[j + 1];
        if (cost < best) { best = cost; bestSplit = j; }
      }
      // Past depth 48 split lists in halves: the tree stays under 48 + log2(n)
      // levels, well inside the traversal stack.
      if (depth > 48) bestSplit = -1;
      let mid = start;
      if (bestSplit >= 0) {
        // Partition: bins 0..bestSplit to the left.
        let r = end - 1;
        while (mid <= r) {
          let i = idx[mid];
          let j = min(BINS - 1, <i32>((cent[3 * i + axis] - lo) * scale));
          if (j <= bestSplit) mid++;
          else { idx[mid] = idx[r]; idx[r] = i; r--; }
        }
      }
      if (mid == start || mid == end) mid = start + (count >> 1); // degenerate: split the list in two
      let left = this.pushNode();
      this.pushNode();
      this.first[node] = left;
      this.count[node] = 0;
      stack.push(left); stack.push(start); stack.push(mid); stack.push(depth + 1);
      stack.push(left + 1); stack.push(mid); stack.push(end); stack.push(depth + 1);
    }
    // Triangles in leaf order: v0, e1 = v1 - v0, e2 = v2 - v0.
    this.tris = new StaticArray<f64>(n * 9);
    this.order = new StaticArray<i32>(n);
    for (let k = 0; k < n; k++) {
      let i = idx[k];
      this.order[k] = i;
      let a = triangles[3 * i] * 3, b1 = triangles[3 * i + 1] * 3, c = triangles[3 * i + 2] * 3;
      for (let d = 0; d < 3; d++) {
        let p0 = positions[a + d];
        this.tris[9 * k + d] = p0;
        this.tris[9 * k + 3 + d] = positions[b1 + d] - p0;
        this.tris[9 * k + 6 + d] = positions[c + d] - p0;
      }
    }
  }

  private pushNode(): i32 {
    let i = this.count.length;
    for (let k = 0; k < 6; k++) this.bounds.push(0);
    this.first.push(0);
    this.count.push(0);
    return i;
  }

  /** Closest hit in (tmin, tmax); returns whether there is one (in `hit`). */
  intersect(ox: f64, oy: f64, oz: f64, dx: f64, dy: f64, dz: f64, tmin: f64, tmax: f64, hit: Hit, anyHit: bool): bool {
    let ix = 1.0 / dx, iy = 1.0 / dy, iz = 1.0 / dz;
    let stack = this.stackBuf;
    let sp = 0;
    let node = 0;
    let found = false;
    let best = tmax;
    let b = this.bounds;
    let tris = this.tris;
    for (;;) {
      let c = unchecked(this.count[node]);
      if (c > 0) {
        let f = unchecked(this.first[node]);
        for (let k = f; k < f + c; k++) {
          let o = 9 * k;
          let e1x = unchecked(tris[o + 3]), e1y = unchecked(tris[o + 4]), e1z = unchecked(tris[o + 5]);
          let e2x = unchecked(tris[o + 6]), e2y = unchecked(tris[o + 7]), e2z = unchecked(tris[o + 8]);
          let px = dy * e2z - dz * e2y, py = dz * e2x - dx * e2z, pz = dx * e2y - dy * e2x;
          let det = e1x * px + e1y * py + e1z * pz;
          if (det > -EPS && det < EPS) continue;
          let inv = 1.0 / det;
          let sx = ox - unchecked(tris[o]), sy = oy - unchecked(tris[o + 1]), sz = oz - unchecked(tris[o + 2]);
          let u = (sx * px + sy * py + sz * pz) * inv;
          if (u < 0 || u > 1) continue;
          let qx = sy * e1z - sz * e1y, qy = sz * e1x - sx * e1z, qz = sx * e1y - sy * e1x;
          let v = (dx * qx + dy * qy + dz * qz) * inv;
          if (v < 0 || u + v > 1) continue;
          let t = (e2x * qx + e2y * qy + e2z * qz) * inv;
          if (t > tmin && t < best) {
            best = t;
            hit.t = t; hit.u = u; hit.v = v; hit.tri = k;
            found = true;
            if (anyHit) return true;
          }
        }
      } else {
        let l = unchecked(this.first[node]);
        let r = l + 1;
        let tl = slab(b, l, ox, oy, oz, ix, iy, iz, tmin, best);
        let tr = slab(b, r, ox, oy, oz, ix, iy, iz, tmin, best);
        if (tl < Infinity && tr < Infinity) {
          if (tr < tl) { let s = l; l = r; r = s; }
          unchecked(stack[sp++] = r);
          node = l;
          continue;
        }
        if (tl < Infinity) { node = l; continue; }
        if (tr < Infinity) { node = r; continue; }
      }
      // Pop the next node (re-testing it against the current best distance).
      let next = -1;
      while (sp > 0) {
        let cand = unchecked(stack[--sp]);
        if (slab(b, cand, ox, oy, oz, ix, iy, iz, tmin, best) < Infinity) { next = cand; break; }
      }
      if (next < 0) break;
      node = next;
    }
    return found;
  }

  stackBuf: StaticArray<i32> = new StaticArray<i32>(128);
}

@inline function area(x0: f64, y0: f64, z0: f64, x1: f64, y1: f64, z1: f64): f64 {
  let a = x1 - x0, b = y1 - y0, c = z1 - z0;
  return a * b + b * c + c * a;
}

/** Entry distance of the ray into node's box within [tmin, tmax], or Infinity. */
@inline function slab(b: Array<f64>, node: i32, ox: f64, oy: f64, oz: f64, ix: f64, iy: f64, iz: f64, tmin: f64, tmax: f64): f64 {
  let o = 6 * node;
  let t0x = (unchecked(b[o]) - ox) * ix, t1x = (unchecked(b[o + 3]) - ox) * ix;
  let t0y = (unchecked(b[o + 1]) - oy) * iy, t1y = (unchecked(b[o + 4]) - oy) * iy;
  let t0z = (unchecked(b[o + 2]) - oz) * iz, t1z = (unchecked(b[o + 5]) - oz) * iz;
  let near = max(max(min(t0x, t1x), min(t0y, t1y)), max(min(t0z, t1z), tmin));
  let far = min(min(max(t0x, t1x), max(t0y, t1y)), min(max(t0z, t1z), tmax));
  return near <= far ? near : Infinity;
}
