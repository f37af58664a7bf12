import { fail, failed } from "./errors";

// Triangle meshes from OBJ (text) and PLY (ascii, binary little/big endian)
// files: positions and triangles (polygons are fan-triangulated). Anything
// else in the file (normals, texture coordinates, colours, materials) is
// skipped; render computes its own smooth normals.

export class Mesh {
  /** x, y, z per vertex. */
  positions: Array<f64> = new Array<f64>();
  /** Three vertex indexes per triangle. */
  triangles: Array<i32> = new Array<i32>();
  get vertexCount(): i32 { return this.positions.length / 3; }
  get triangleCount(): i32 { return this.triangles.length / 3; }
}

/** Parses an OBJ or PLY file (PLY when it starts with "ply"); null after fail(). */
export function parseMesh(bytes: Uint8Array): Mesh | null {
  if (bytes.length >= 3 && bytes[0] == 0x70 && bytes[1] == 0x6c && bytes[2] == 0x79) return parsePly(bytes);
  return parseObj(bytes);
}

// ---- a small tokenizer over bytes ----

@inline function isSpace(c: i32): bool { return c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0b || c == 0x0c; }

/** A decimal number at [p, end), like strtod but without exactness (nearest
 * within an ulp or two; deterministic). Returns NaN when there is none. */
function parseNumber(bytes: Uint8Array, p: i32, end: i32): f64 {
  let neg = false;
  if (p < end && (bytes[p] == 0x2d || bytes[p] == 0x2b)) { neg = bytes[p] == 0x2d; p++; }
  let mant: f64 = 0;
  let digits = 0;
  let exp = 0;
  while (p < end && bytes[p] >= 0x30 && bytes[p] <= 0x39) { mant = mant * 10 + <f64>(bytes[p] - 0x30); p++; digits++; }
  if (p < end && bytes[p] == 0x2e) {
    p++;
    while (p < end && bytes[p] >= 0x30 && bytes[p] <= 0x39) { mant = mant * 10 + <f64>(bytes[p] - 0x30); p++; digits++; exp--; }
  }
  if (digits == 0) {
    // nan / inf are not geometry
    return NaN;
  }
  if (p < end && (bytes[p] == 0x65 || bytes[p] == 0x45)) {
    p++;
    let eneg = false;
    if (p < end && (bytes[p] == 0x2d || bytes[p] == 0x2b)) { eneg = bytes[p] == 0x2d; p++; }
    let e = 0;
    while (p < end && bytes[p] >= 0x30 && bytes[p] <= 0x39) { if (e < 10000) e = e * 10 + (bytes[p] - 0x30); p++; }
    exp += eneg ? -e : e;
  }
  let v = exp >= 0 ? mant * Math.pow(10, <f64>exp) : mant / Math.pow(10, <f64>-exp);
  return neg ? -v : v;
}

/** Splits [start, end) into whitespace-separated tokens: pairs of offsets. */
function tokens(bytes: Uint8Array, start: i32, end: i32, out: Array<i32>): void {
  out.length = 0;
  let p = start;
  while (p < end) {
    while (p < end && isSpace(bytes[p])) p++;
    if (p >= end) break;
    let s = p;
    while (p < end && !isSpace(bytes[p])) p++;
    out.push(s);
    out.push(p);
  }
}

function lineEnd(bytes: Uint8Array, p: i32): i32 {
  let n = bytes.length;
  while (p < n && bytes[p] != 0x0a) p++;
  return p;
}

function tokenIs(bytes: Uint8Array, s: i32, e: i32, word: string): bool {
  if (e - s != word.length) return false;
  for (let i = 0; i < word.length; i++) if (<i32>bytes[s + i] != word.charCodeAt(i)) return false;
  return true;
}

function tokenString(bytes: Uint8Array, s: i32, e: i32): string {
  return String.UTF8.decodeUnsafe(bytes.dataStart + <usize>s, <usize>(e - s));
}

// ---- OBJ ----

function parseObj(bytes: Uint8Array): Mesh | null {
  let mesh = new Mesh();
  let toks = new Array<i32>();
  let face = new Array<i32>();
  let n = bytes.length;
  let p = 0;
  let line = 0;
  while (p < n) {
    let e = lineEnd(bytes, p);
    line++;
    let c0 = bytes[p];
    if (c0 == 0x76 && p + 1 < e && isSpace(bytes[p + 1])) { // "v "
      tokens(bytes, p + 1, e, toks);
      if (toks.length < 6) { fail("OBJ line " + line.toString() + ": a vertex needs x y z"); return null; }
      for (let k = 0; k < 3; k++) {
        let v = parseNumber(bytes, toks[2 * k], toks[2 * k + 1]);
        if (!isFinite(v)) { fail("OBJ line " + line.toString() + ": bad number"); return null; }
        mesh.positions.push(v);
      }
    } else if (c0 == 0x66 && p + 1 < e && isSpace(bytes[p + 1])) { // "f "
      tokens(bytes, p + 1, e, toks);
      face.length = 0;
      let nv = mesh.vertexCount;
      for (let k = 0; k < toks.length; k += 2) {
        let s = toks[k];
        let t = toks[k + 1];
        let slash = s;
        while (slash < t && bytes[slash] != 0x2f) slash++;
        let idx = parseNumber(bytes, s, slash);
        if (!isFinite(idx) || idx == 0 || idx != Math.floor(idx)) { fail("OBJ line " + line.toString() + ": bad face index"); return null; }
        let i = idx > 0 ? <i32>idx - 1 : nv + <i32>idx;
        if (i < 0 || i >= nv) { fail("OBJ line " + line.toString() + ": face index out of range"); return null; }
        face.push(i);
      }
      for (let k = 1; k + 1 < face.length; k++) {
        mesh.triangles.push(face[0]);
        mesh.triangles.push(face[k]);
        mesh.triangles.push(face[k + 1]);
      }
    }
    p = e + 1;
  }
  if (mesh.triangleCount == 0) { fail("OBJ: no faces"); return null; }
  return mesh;
}

// ---- PLY ----

const ASCII = 0;
const LE = 1;
const BE = 2;

class Prop {
  name: string = "";
  type: i32 = 0;       // size in bytes; negative: float (-4 float, -8 double); signedness below
  signed: bool = false;
  isList: bool = false;
  countType: i32 = 0;
  countSigned: bool = false;
}

class Element {
  name: string = "";
  count: i32 = 0;
  props: Array<Prop> = new Array<Prop>();
}

/** Size/kind of a PLY scalar type: bytes, negative for floats. */
function plyType(name: string): i32 {
  if (name == "char" || name == "int8" || name == "uchar" || name == "uint8") return 1;
  if (name == "short" || name == "int16" || name == "ushort" || name == "uint16") return 2;
  if (name == "int" || name == "int32" || name == "uint" || name == "uint32") return 4;
  if (name == "float" || name == "float32") return -4;
  if (name == "double" || name == "float64") return -8;
  fail("PLY: unknown type " + name);
  return 1;
}

function plySigned(name: string): bool {
  return name == "char" || name == "int8" || name == "short" || name == "int16" || name == "int" || name == "int32";
}

class BinReader {
  constructor(public bytes: Uint8Array, public pos: i32, public big: bool) {}
  read(type: i32, signed: bool): f64 {
    let size = type < 0 ? -type : type;
    if (this.pos + size > this.bytes.length) { fail("PLY: data ends early"); this.pos = this.bytes.length; return 0; }
    let at = this.bytes.dataStart + <usize>this.pos;
    this.pos += size;
    if (size == 1) return signed ? <f64>load<i8>(at) : <f64>load<u8>(at);
    if (size == 2) {
      let v = load<u16>(at);
      if (this.big) v = bswap<u16>(v);
      return signed ? <f64><i16>v : <f64>v;
    }
    if (size == 4) {
      let v = load<u32>(at);
      if (this.big) v = bswap<u32>(v);
      if (type < 0) return <f64>reinterpret<f32>(v);
      return signed ? <f64><i32>v : <f64>v;
    }
    let v = load<u64>(at);
    if (this.big) v = bswap<u64>(v);
    return reinterpret<f64>(v);
  }
}

function parsePly(bytes: Uint8Array): Mesh | null {
  let toks = new Array<i32>();
  let elements = new Array<Element>();
  let format = -1;
  let p = 0;
  let n = bytes.length;
  let ended = false;
  while (p < n) {
    let e = lineEnd(bytes, p);
    tokens(bytes, p, e, toks);
    p = e + 1;
    if (toks.length == 0) continue;
    let s0 = toks[0], e0 = toks[1];
    if (tokenIs(bytes, s0, e0, "end_header")) { ended = true; break; }
    if (tokenIs(bytes, s0, e0, "format") && toks.length >= 4) {
      let f = tokenString(bytes, toks[2], toks[3]);
      format = f == "ascii" ? ASCII : f == "binary_little_endian" ? LE : f == "binary_big_endian" ? BE : -1;
      if (format < 0) { fail("PLY: unknown format " + f); return null; }
    } else if (tokenIs(bytes, s0, e0, "element") && toks.length >= 6) {
      let el = new Element();
      el.name = tokenString(bytes, toks[2], toks[3]);
      el.count = <i32>parseNumber(bytes, toks[4], toks[5]);
      elements.push(el);
    } else if (tokenIs(bytes, s0, e0, "property") && elements.length > 0) {
      let prop = new Prop();
      if (toks.length >= 10 && tokenIs(bytes, toks[2], toks[3], "list")) {
        prop.isList = true;
        let ct = tokenString(bytes, toks[4], toks[5]);
        let it = tokenString(bytes, toks[6], toks[7]);
        prop.countType = plyType(ct); prop.countSigned = plySigned(ct);
        prop.type = plyType(it); prop.signed = plySigned(it);
        prop.name = tokenString(bytes, toks[8], toks[9]);
      } else if (toks.length >= 6) {
        let t = tokenString(bytes, toks[2], toks[3]);
        prop.type = plyType(t); prop.signed = plySigned(t);
        prop.name = tokenString(bytes, toks[4], toks[5]);
      } else { fail("PLY: bad property line"); return null; }
      elements[elements.length - 1].props.push(prop);
    }
  }
  if (!ended || format < 0) { fail("PLY: no header end or format"); return null; }
  if (failed()) return null;
  let mesh = new Mesh();
  let bin = new BinReader(bytes, p, format == BE);
  let values = new Array<f64>();
  let face = new Array<i32>();
  for (let ei = 0; ei < elements.length; ei++) {
    let el = elements[ei];
    let isVertex = el.name == "vertex";
    let isFace = el.name == "face";
    let xi = -1, yi = -1, zi = -1, li = -1;
    for (let k = 0; k < el.props.length; k++) {
      let nm = el.props[k].name;
      if (nm == "x") xi = k; else if (nm == "y") yi = k; else if (nm == "z") zi = k;
      else if (el.props[k].isList && (nm == "vertex_indices" || nm == "vertex_index")) li = k;
    }
    if (isVertex && (xi < 0 || yi < 0 || zi < 0)) { fail("PLY: vertex without x, y, z"); return null; }
    for (let r = 0; r < el.count; r++) {
      values.length = 0;
      face.length = 0;
      if (format == ASCII) {
        let e = lineEnd(bytes, bin.pos);
        tokens(bytes, bin.pos, e, toks);
        bin.pos = e + 1;
        if (toks.length == 0) { r--; if (bin.pos >= n) { fail("PLY: data ends early"); return null; } continue; }
        let t = 0;
        for (let k = 0; k < el.props.length; k++) {
          let prop = el.props[k];
          if (t >= toks.length) { fail("PLY: short data line"); return null; }
          let v = parseNumber(bytes, toks[t], toks[t + 1]); t += 2;
          if (prop.isList) {
            let cnt = <i32>v;
            for (let j = 0; j < cnt; j++) {
              if (t >= toks.length) { fail("PLY: short list"); return null; }
              let x = parseNumber(bytes, toks[t], toks[t + 1]); t += 2;
              if (k == li) face.push(<i32>x);
            }
            values.push(0);
          } else values.push(v);
        }
      } else {
        for (let k = 0; k < el.props.length; k++) {
          let prop = el.props[k];
          if (prop.isList) {
            let cnt = <i32>bin.read(prop.countType, prop.countSigned);
            for (let j = 0; j < cnt && !failed(); j++) {
              let x = bin.read(prop.type, prop.signed);
              if (k == li) face.push(<i32>x);
            }
            values.push(0);
          } else values.push(bin.read(prop.type, prop.signed));
        }
      }
      if (failed()) return null;
      if (isVertex) {
        let x = values[xi], y = values[yi], z = values[zi];
        if (!isFinite(x) || !isFinite(y) || !isFinite(z)) { fail("PLY: bad vertex"); return null; }
        mesh.positions.push(x); mesh.positions.push(y); mesh.positions.push(z);
      } else if (isFace && li >= 0) {
        for (let k = 1; k + 1 < face.length; k++) {
          mesh.triangles.push(face[0]); mesh.triangles.push(face[k]); mesh.triangles.push(face[k + 1]);
        }
      }
    }
  }
  let nv = mesh.vertexCount;
  for (let i = 0; i < mesh.triangles.length; i++) {
    let v = mesh.triangles[i];
    if (v < 0 || v >= nv) { fail("PLY: face index out of range"); return null; }
  }
  if (mesh.triangleCount == 0) { fail("PLY: no faces"); return null; }
  return mesh;
}
