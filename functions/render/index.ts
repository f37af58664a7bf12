// render: a path tracer whose warm state is a triangle mesh and its BVH.
//
//   init()        parses the scene (JSON: size, samples, camera, lights and an
//                 OBJ or PLY model), welds the mesh, computes smooth normals,
//                 adds a ground plane and builds the BVH (binned SAH)
//   run(i, n)     renders the rows y with y mod n = i and outputs them (RGB8
//                 rows with where they go, below)
//   run_task(t, T) the same for task t of T (a job with `tasks`: the host
//                 calls it for each task a clone takes, and counts tasks
//                 itself, so no progress)
//   reduce(n)     interleaves the n clones' (or tasks') rows into a PNG
//   handle()      renders the whole image in one instance and answers the PNG;
//                 a request body is a spec that replaces init's
//
// Every pixel's random numbers are seeded by (seed, pixel index, sample), so
// the image does not depend on how it was split: a forked render is byte
// for byte the single-instance one.
//
// Clones (and tasks) take interleaved rows, not bands: the cost of a row
// changes smoothly down the image (sky rows are cheap, rows through the model
// are not), so every n-th row gives every clone nearly the same work and no
// clone is left as the tail; equal tasks also leave the least tail when
// clones take them as they finish.
//
// Clone output: "FRI1", then u32 LE width, height, first row, row step, then
// width * 3 bytes of sRGB pixels for each row first, first + step, ... below
// height, top to bottom.

import { badRequest as answerBadRequest, JsonWriter, logInfo, monotonicMs, readInput, readReduceInput, reportProgress, setContentType, setStatus, writeOutput, writeOutputWriter } from "../lib";
import { fail, failure } from "./errors";
import { Bvh, Hit } from "./bvh";
import { Mesh, parseMesh } from "./mesh";
import { encodePng } from "./png";
import { parseScene, Scene } from "./scene";

const MAGIC: u32 = 0x31495246; // "FRI1" little-endian
const HEADER: i32 = 20;

// The warm state, made by init and shared by every clone through the snapshot.
let scene: Scene = new Scene();
let bvh: Bvh | null = null;
/** Per triangle (original order): 9 shading-normal components (one per corner). */
let normals: StaticArray<f64> = new StaticArray<f64>(0);
let modelTriangles: i32 = 0;
let eps: f64 = 1e-4;
// Camera basis.
let camPos: StaticArray<f64> = new StaticArray<f64>(3);
let camFwd: StaticArray<f64> = new StaticArray<f64>(3);
let camRight: StaticArray<f64> = new StaticArray<f64>(3);
let camUp: StaticArray<f64> = new StaticArray<f64>(3);
let tanHalf: f64 = 0;
let sunL: StaticArray<f64> = new StaticArray<f64>(3);

export function init(): void {
  let input = readInput();
  // Empty: an HTTP deployment, where handle() brings the spec.
  if (input.length > 0 && !build(input)) throw new Error(failure());
}

/** Parses a spec and makes the warm state from it; false after fail(). */
function build(input: Uint8Array): bool {
  let started = monotonicMs();
  let parsed = parseScene(input);
  if (parsed === null) return false;
  scene = parsed;
  let mesh = parseMesh(scene.model);
  if (mesh === null) return false;
  scene.model = new Uint8Array(0);
  let parsedMs = monotonicMs() - started;
  let welded = weld(mesh);
  if (welded === null) return false;
  place(welded);
  modelTriangles = welded.triangleCount;
  let weldedVertices = welded.vertexCount;
  normals = smoothNormals(welded);
  if (scene.ground) addGround(welded);
  let t0 = monotonicMs();
  let tree = new Bvh(welded.positions, welded.triangles);
  if (!setCamera(welded)) return false;
  bvh = tree;
  let s = scene.sunDir;
  let l = Math.sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2]);
  sunL[0] = s[0] / l; sunL[1] = s[1] / l; sunL[2] = s[2] / l;
  logInfo("render: " + mesh.vertexCount.toString() + " vertices (" + weldedVertices.toString() + " welded), " +
    modelTriangles.toString() + " triangles; parsed in " + (<i64>parsedMs).toString() + " ms; BVH " +
    tree.nodeCount.toString() + " nodes, depth " + tree.depth.toString() + ", built in " + (<i64>(monotonicMs() - t0)).toString() + " ms");
  return true;
}

export function run(index: i32, count: i32): i32 {
  if (bvh === null) throw new Error("render: no scene (the job's init input is the spec)");
  writeOutput(renderRows(index, count, true));
  return 0;
}

export function run_task(task: i32, tasks: i32): i32 {
  if (bvh === null) throw new Error("render: no scene (the job's init input is the spec)");
  writeOutput(renderRows(task, tasks, false));
  return 0;
}

/** Rows first, first + step, ... below `height`. */
function rowsOf(first: i32, step: i32, height: i32): i32 {
  return first >= height ? 0 : (height - first + step - 1) / step;
}

export function reduce(count: i32): i32 {
  if (bvh === null) throw new Error("render: no scene");
  let parts = readReduceInput(count);
  let w = scene.width, h = scene.height;
  if (parts.length != count) throw new Error("render reduce: " + parts.length.toString() + " outputs for " + count.toString() + " clones");
  let rgb = new Uint8Array(w * h * 3);
  let stride = w * 3;
  for (let i = 0; i < parts.length; i++) {
    let p = parts[i];
    if (p.length < HEADER || load<u32>(p.dataStart) != MAGIC) throw new Error("render reduce: output " + i.toString() + " is not a set of rows");
    let pw = <i32>load<u32>(p.dataStart + 4), ph = <i32>load<u32>(p.dataStart + 8);
    let first = <i32>load<u32>(p.dataStart + 12), step = <i32>load<u32>(p.dataStart + 16);
    // Clone i of count holds rows i, i + count, ...: together they cover each row once.
    if (pw != w || ph != h || first != i || step != count || p.length != HEADER + rowsOf(first, step, h) * stride) {
      throw new Error("render reduce: output " + i.toString() + " has rows from " + first.toString() + " every " + step.toString() +
        " of a " + pw.toString() + "x" + ph.toString() + " image, expected from " + i.toString() + " every " + count.toString() +
        " of " + w.toString() + "x" + h.toString());
    }
    let src = p.dataStart + HEADER;
    for (let y = first; y < h; y += step) {
      memory.copy(rgb.dataStart + <usize>(y * stride), src, <usize>stride);
      src += stride;
    }
  }
  writeOutput(encodePng(w, h, rgb));
  return 0;
}

export function handle(): i32 {
  let body = readInput();
  if (body.length > 0 && !build(body)) return badRequest(failure());
  if (bvh === null) return badRequest("no scene: POST the spec, or give it as the init input");
  let rows = renderRows(0, 1, false);
  setContentType("image/png");
  writeOutput(encodePng(scene.width, scene.height, rows.subarray(HEADER)));
  return 0;
}

/** 400 with a JSON error body, labelled as JSON. */
function badRequest(message: string): i32 {
  setContentType("application/json");
  return answerBadRequest(message);
}

// ---- the scene's geometry ----

/** Merges vertices with identical positions, so smooth normals cross faces. */
function weld(mesh: Mesh): Mesh | null {
  let out = new Mesh();
  let map = new Map<u64, i32>();
  let remap = new StaticArray<i32>(mesh.vertexCount);
  let p = mesh.positions;
  for (let i = 0; i < mesh.vertexCount; i++) {
    let x = p[3 * i], y = p[3 * i + 1], z = p[3 * i + 2];
    let key = reinterpret<u64>(x + 0.0) * 0x9E3779B97F4A7C15 ^ reinterpret<u64>(y + 0.0) * 0xC2B2AE3D27D4EB4F ^ reinterpret<u64>(z + 0.0) * 0x165667B19E3779F9;
    let found = -1;
    // Linear probing over keys (a collision with a different position probes on).
    for (let k: u64 = 0; k < 64; k++) {
      if (!map.has(key + k)) break;
      let j = map.get(key + k);
      let q = out.positions;
      if (q[3 * j] == x && q[3 * j + 1] == y && q[3 * j + 2] == z) { found = j; break; }
    }
    if (found < 0) {
      found = out.vertexCount;
      let k: u64 = 0;
      while (map.has(key + k)) k++;
      map.set(key + k, found);
      out.positions.push(x); out.positions.push(y); out.positions.push(z);
    }
    remap[i] = found;
  }
  let t = mesh.triangles;
  for (let i = 0; i < t.length; i += 3) {
    let a = remap[t[i]], b = remap[t[i + 1]], c = remap[t[i + 2]];
    if (a == b || b == c || a == c) continue; // degenerate
    out.triangles.push(a); out.triangles.push(b); out.triangles.push(c);
  }
  if (out.triangleCount == 0) { fail("render init: the model has no non-degenerate triangles"); return null; }
  return out;
}

/** Applies up axis, normalization and rotation to the model's positions. */
function place(mesh: Mesh): void {
  let p = mesh.positions;
  let n = mesh.vertexCount;
  if (scene.upZ) for (let i = 0; i < n; i++) { let y = p[3 * i + 1]; p[3 * i + 1] = p[3 * i + 2]; p[3 * i + 2] = -y; }
  if (scene.normalize) {
    let lo = bounds(mesh, true), hi = bounds(mesh, false);
    let ext = max(hi[0] - lo[0], max(hi[1] - lo[1], hi[2] - lo[2]));
    let k = ext > 0 ? 2.0 / ext : 1.0;
    let cx = (lo[0] + hi[0]) * 0.5, cz = (lo[2] + hi[2]) * 0.5;
    for (let i = 0; i < n; i++) {
      p[3 * i] = (p[3 * i] - cx) * k;
      p[3 * i + 1] = (p[3 * i + 1] - lo[1]) * k;
      p[3 * i + 2] = (p[3 * i + 2] - cz) * k;
    }
  }
  if (scene.rotateY != 0) {
    let a = scene.rotateY * Math.PI / 180;
    let c = Math.cos(a), s = Math.sin(a);
    for (let i = 0; i < n; i++) {
      let x = p[3 * i], z = p[3 * i + 2];
      p[3 * i] = c * x + s * z;
      p[3 * i + 2] = -s * x + c * z;
    }
  }
}

function bounds(mesh: Mesh, lowest: bool): StaticArray<f64> {
  let r = new StaticArray<f64>(3);
  let p = mesh.positions;
  for (let a = 0; a < 3; a++) {
    let v = lowest ? Infinity : -Infinity;
    for (let i = 0; i < mesh.vertexCount; i++) v = lowest ? min(v, p[3 * i + a]) : max(v, p[3 * i + a]);
    r[a] = v;
  }
  return r;
}

/** Area-weighted vertex normals, 3 per triangle corner. */
function smoothNormals(mesh: Mesh): StaticArray<f64> {
  let p = mesh.positions, t = mesh.triangles;
  let vn = new StaticArray<f64>(mesh.vertexCount * 3);
  let nt = mesh.triangleCount;
  for (let i = 0; i < nt; i++) {
    let a = t[3 * i] * 3, b = t[3 * i + 1] * 3, c = t[3 * i + 2] * 3;
    let e1x = p[b] - p[a], e1y = p[b + 1] - p[a + 1], e1z = p[b + 2] - p[a + 2];
    let e2x = p[c] - p[a], e2y = p[c + 1] - p[a + 1], e2z = p[c + 2] - p[a + 2];
    let nx = e1y * e2z - e1z * e2y, ny = e1z * e2x - e1x * e2z, nz = e1x * e2y - e1y * e2x;
    for (let k = 0; k < 3; k++) {
      let v = t[3 * i + k] * 3;
      vn[v] += nx; vn[v + 1] += ny; vn[v + 2] += nz;
    }
  }
  let out = new StaticArray<f64>(nt * 9);
  for (let i = 0; i < nt; i++) {
    for (let k = 0; k < 3; k++) {
      let v = t[3 * i + k] * 3;
      let x = vn[v], y = vn[v + 1], z = vn[v + 2];
      let l = Math.sqrt(x * x + y * y + z * z);
      if (l > 0) { x /= l; y /= l; z /= l; }
      out[9 * i + 3 * k] = x; out[9 * i + 3 * k + 1] = y; out[9 * i + 3 * k + 2] = z;
    }
  }
  return out;
}

/** A large square at the model's lowest y (two triangles after the model's). */
function addGround(mesh: Mesh): void {
  let lo = bounds(mesh, true), hi = bounds(mesh, false);
  let ext = max(hi[0] - lo[0], max(hi[1] - lo[1], hi[2] - lo[2]));
  eps = max(1e-9, ext * 1e-5);
  let cx = (lo[0] + hi[0]) * 0.5, cz = (lo[2] + hi[2]) * 0.5;
  let r = ext * 50;
  let y = lo[1];
  let base = mesh.vertexCount;
  let xs: f64[] = [-r, r, r, -r];
  let zs: f64[] = [-r, -r, r, r];
  for (let i = 0; i < 4; i++) { mesh.positions.push(cx + xs[i]); mesh.positions.push(y); mesh.positions.push(cz + zs[i]); }
  mesh.triangles.push(base); mesh.triangles.push(base + 2); mesh.triangles.push(base + 1);
  mesh.triangles.push(base); mesh.triangles.push(base + 3); mesh.triangles.push(base + 2);
}

function setCamera(mesh: Mesh): bool {
  // Bounds of the model only (the ground is the last 4 vertices when present).
  let p = mesh.positions;
  let nv = scene.ground ? mesh.vertexCount - 4 : mesh.vertexCount;
  let lo: f64[] = [Infinity, Infinity, Infinity], hi: f64[] = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < nv; i++) for (let a = 0; a < 3; a++) { lo[a] = min(lo[a], p[3 * i + a]); hi[a] = max(hi[a], p[3 * i + a]); }
  if (!scene.ground) eps = max(1e-9, max(hi[0] - lo[0], max(hi[1] - lo[1], hi[2] - lo[2])) * 1e-5);
  let c = scene.cam;
  if (!scene.hasLookAt) for (let a = 0; a < 3; a++) c[3 + a] = (lo[a] + hi[a]) * 0.5;
  tanHalf = Math.tan(scene.fov * Math.PI / 360);
  if (!scene.hasPosition) {
    let dx = hi[0] - lo[0], dy = hi[1] - lo[1], dz = hi[2] - lo[2];
    let radius = 0.5 * Math.sqrt(dx * dx + dy * dy + dz * dz);
    let dist = 0.85 * radius / Math.sin(Math.atan(tanHalf * min(1.0, <f64>scene.width / <f64>scene.height)));
    let vx = 0.55, vy = 0.35, vz = 1.0;
    let l = Math.sqrt(vx * vx + vy * vy + vz * vz);
    c[0] = c[3] + vx / l * dist; c[1] = c[4] + vy / l * dist; c[2] = c[5] + vz / l * dist;
  }
  for (let a = 0; a < 3; a++) { camPos[a] = c[a]; camFwd[a] = c[3 + a] - c[a]; }
  if (!normalize3(camFwd)) return false;
  // right = fwd x up, up' = right x fwd
  let ux = c[6], uy = c[7], uz = c[8];
  camRight[0] = camFwd[1] * uz - camFwd[2] * uy;
  camRight[1] = camFwd[2] * ux - camFwd[0] * uz;
  camRight[2] = camFwd[0] * uy - camFwd[1] * ux;
  if (!normalize3(camRight)) return false;
  camUp[0] = camRight[1] * camFwd[2] - camRight[2] * camFwd[1];
  camUp[1] = camRight[2] * camFwd[0] - camRight[0] * camFwd[2];
  camUp[2] = camRight[0] * camFwd[1] - camRight[1] * camFwd[0];
  return true;
}

function normalize3(v: StaticArray<f64>): bool {
  let l = Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (l == 0) { fail("render init: degenerate camera (position equals lookAt, or up parallel to the view)"); return false; }
  v[0] /= l; v[1] /= l; v[2] /= l;
  return true;
}

// ---- random numbers: SplitMix64 seeded by (seed, pixel, sample) ----

let rng: u64 = 0;

@inline function mix64(x: u64): u64 {
  let z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

function seedRng(pixel: i32, sample: i32): void {
  rng = mix64(((<u64>scene.seed << 48) ^ (<u64>pixel << 20) ^ <u64>sample) + 0x9E3779B97F4A7C15);
}

@inline function rand(): f64 {
  rng += 0x9E3779B97F4A7C15;
  return <f64>(mix64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

// ---- the path tracer ----

const hit = new Hit();
const shadowHit = new Hit();
// The current ray and colour (globals avoid allocating per ray).
let ox: f64 = 0, oy: f64 = 0, oz: f64 = 0, dx: f64 = 0, dy: f64 = 0, dz: f64 = 0;
let lr: f64 = 0, lg: f64 = 0, lb: f64 = 0;

/** Radiance along the current ray into lr, lg, lb. */
function trace(): void {
  let tree = changetype<Bvh>(bvh);
  let tr: f64 = 1, tg: f64 = 1, tb: f64 = 1;
  lr = 0; lg = 0; lb = 0;
  let sunCos = Math.cos(scene.sunRadius * Math.PI / 180);
  for (let depth = 0; depth < scene.maxDepth; depth++) {
    if (!tree.intersect(ox, oy, oz, dx, dy, dz, 0, Infinity, hit, false)) {
      // The sky: horizon to zenith by elevation.
      let t = max(0.0, dy);
      t = Math.sqrt(t);
      let k = scene.skyIntensity;
      lr += tr * k * (scene.horizon[0] + (scene.zenith[0] - scene.horizon[0]) * t);
      lg += tg * k * (scene.horizon[1] + (scene.zenith[1] - scene.horizon[1]) * t);
      lb += tb * k * (scene.horizon[2] + (scene.zenith[2] - scene.horizon[2]) * t);
      return;
    }
    let k = hit.tri;
    let tri = tree.order[k];
    let T = tree.tris;
    let px = ox + dx * hit.t, py = oy + dy * hit.t, pz = oz + dz * hit.t;
    // Geometric normal, facing the ray.
    let e1x = T[9 * k + 3], e1y = T[9 * k + 4], e1z = T[9 * k + 5];
    let e2x = T[9 * k + 6], e2y = T[9 * k + 7], e2z = T[9 * k + 8];
    let gx = e1y * e2z - e1z * e2y, gy = e1z * e2x - e1x * e2z, gz = e1x * e2y - e1y * e2x;
    let gl = Math.sqrt(gx * gx + gy * gy + gz * gz);
    gx /= gl; gy /= gl; gz /= gl;
    let flip = gx * dx + gy * dy + gz * dz > 0;
    if (flip) { gx = -gx; gy = -gy; gz = -gz; }
    // Shading normal and albedo.
    let nx = gx, ny = gy, nz = gz;
    let ar: f64, ag: f64, ab: f64;
    if (tri < modelTriangles) {
      let u = hit.u, v = hit.v, w = 1 - u - v;
      let o = 9 * tri;
      nx = w * normals[o] + u * normals[o + 3] + v * normals[o + 6];
      ny = w * normals[o + 1] + u * normals[o + 4] + v * normals[o + 7];
      nz = w * normals[o + 2] + u * normals[o + 5] + v * normals[o + 8];
      let nl = Math.sqrt(nx * nx + ny * ny + nz * nz);
      if (nl > 0) { nx /= nl; ny /= nl; nz /= nl; } else { nx = gx; ny = gy; nz = gz; }
      if (flip) { nx = -nx; ny = -ny; nz = -nz; }
      if (nx * gx + ny * gy + nz * gz <= 0.05) { nx = gx; ny = gy; nz = gz; }
      ar = scene.albedo[0]; ag = scene.albedo[1]; ab = scene.albedo[2];
    } else {
      let c = scene.checker;
      let odd = c > 0 && ((<i64>Math.floor(px / c) + <i64>Math.floor(pz / c)) & 1) != 0;
      let a = odd ? scene.groundAlbedo2 : scene.groundAlbedo;
      ar = a[0]; ag = a[1]; ab = a[2];
    }
    let sx = px + gx * eps, sy = py + gy * eps, sz = pz + gz * eps;
    // The sun: a direction in its cone, a shadow ray.
    let sc = scene.sunColor;
    if (sc[0] + sc[1] + sc[2] > 0) {
      let cz = 1 - rand() * (1 - sunCos);
      let sr = Math.sqrt(max(0.0, 1 - cz * cz));
      let phi = 2 * Math.PI * rand();
      basisDir(sunL[0], sunL[1], sunL[2], sr * Math.cos(phi), sr * Math.sin(phi), cz);
      let lx = bx, ly = by, lz = bz;
      let cosn = nx * lx + ny * ly + nz * lz;
      if (cosn > 0 && gx * lx + gy * ly + gz * lz > 0 &&
          !tree.intersect(sx, sy, sz, lx, ly, lz, 0, Infinity, shadowHit, true)) {
        let f = cosn / Math.PI;
        lr += tr * ar * sc[0] * f; lg += tg * ag * sc[1] * f; lb += tb * ab * sc[2] * f;
      }
    }
    tr *= ar; tg *= ag; tb *= ab;
    // Next direction: cosine-weighted around the shading normal.
    let r1 = rand(), r2 = rand();
    let r = Math.sqrt(r1);
    let phi = 2 * Math.PI * r2;
    basisDir(nx, ny, nz, r * Math.cos(phi), r * Math.sin(phi), Math.sqrt(max(0.0, 1 - r1)));
    if (bx * gx + by * gy + bz * gz <= 0) return;
    ox = sx; oy = sy; oz = sz; dx = bx; dy = by; dz = bz;
  }
}

let bx: f64 = 0, by: f64 = 0, bz: f64 = 0;

/** (a, b, c) in an orthonormal basis around unit (nx, ny, nz), into bx, by, bz. */
function basisDir(nx: f64, ny: f64, nz: f64, a: f64, b: f64, c: f64): void {
  // Duff et al., "Building an orthonormal basis, revisited".
  let sign = nz >= 0 ? 1.0 : -1.0;
  let q = -1.0 / (sign + nz);
  let m = nx * ny * q;
  let t1x = 1 + sign * nx * nx * q, t1y = sign * m, t1z = -sign * nx;
  let t2x = m, t2y = sign + ny * ny * q, t2z = -ny;
  bx = a * t1x + b * t2x + c * nx;
  by = a * t1y + b * t2y + c * ny;
  bz = a * t1z + b * t2z + c * nz;
}

@inline function toByte(v: f64): u8 {
  // ACES filmic curve (Narkowicz), then sRGB-like gamma 1/2.2.
  let x = max(0.0, v * scene.exposure);
  x = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14);
  x = Math.pow(min(1.0, x), 1.0 / 2.2);
  return <u8>min(255.0, Math.floor(x * 255 + 0.5));
}

/** Rows first, first + step, ... as a clone output (header + RGB8). */
function renderRows(first: i32, step: i32, progress: bool): Uint8Array {
  let w = scene.width, h = scene.height;
  let rows = rowsOf(first, step, h);
  let out = new Uint8Array(HEADER + rows * w * 3);
  store<u32>(out.dataStart, MAGIC);
  store<u32>(out.dataStart + 4, <u32>w);
  store<u32>(out.dataStart + 8, <u32>h);
  store<u32>(out.dataStart + 12, <u32>first);
  store<u32>(out.dataStart + 16, <u32>step);
  let aspect = <f64>w / <f64>h;
  let n = scene.samples;
  let inv = 1.0 / <f64>n;
  let every = max(1, rows / 16);
  let o = out.dataStart + HEADER;
  let done = 0;
  for (let y = first; y < h; y += step) {
    for (let x = 0; x < w; x++) {
      let pixel = y * w + x;
      let r: f64 = 0, g: f64 = 0, b: f64 = 0;
      for (let s = 0; s < n; s++) {
        seedRng(pixel, s);
        let sx = (2 * (<f64>x + rand()) / <f64>w - 1) * tanHalf * aspect;
        let sy = (1 - 2 * (<f64>y + rand()) / <f64>h) * tanHalf;
        let ddx = camFwd[0] + sx * camRight[0] + sy * camUp[0];
        let ddy = camFwd[1] + sx * camRight[1] + sy * camUp[1];
        let ddz = camFwd[2] + sx * camRight[2] + sy * camUp[2];
        let l = Math.sqrt(ddx * ddx + ddy * ddy + ddz * ddz);
        ox = camPos[0]; oy = camPos[1]; oz = camPos[2];
        dx = ddx / l; dy = ddy / l; dz = ddz / l;
        trace();
        r += lr; g += lg; b += lb;
      }
      store<u8>(o, toByte(r * inv));
      store<u8>(o + 1, toByte(g * inv));
      store<u8>(o + 2, toByte(b * inv));
      o += 3;
    }
    done++;
    if (progress && (done % every == 0 || done == rows)) reportProgress(done, rows);
  }
  return out;
}
