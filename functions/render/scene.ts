// The scene settings, from the init input (JSON; see functions/README.md).

import { formatDouble, JsonValue, parseJson } from "../lib";
import { fail, failed } from "./errors";

export class Scene {
  width: i32 = 96;
  height: i32 = 72;
  samples: i32 = 16;
  maxDepth: i32 = 4;
  seed: i32 = 0;
  /** Fit the model: centred on x and z, resting on y = 0, largest extent 2. */
  normalize: bool = true;
  /** "y" (default) or "z": which model axis points up. */
  upZ: bool = false;
  rotateY: f64 = 0; // degrees, after normalizing
  hasCamera: bool = false;
  cam: StaticArray<f64> = [0, 0, 0, 0, 0, 0, 0, 1, 0]; // position, lookAt, up
  hasLookAt: bool = false;
  hasPosition: bool = false;
  fov: f64 = 40; // vertical, degrees
  albedo: StaticArray<f64> = [0.75, 0.55, 0.35];
  ground: bool = true;
  groundAlbedo: StaticArray<f64> = [0.62, 0.62, 0.6];
  groundAlbedo2: StaticArray<f64> = [0.42, 0.42, 0.4];
  checker: f64 = 0.5; // checker square size (0: plain)
  zenith: StaticArray<f64> = [0.35, 0.55, 1.0];
  horizon: StaticArray<f64> = [1.0, 1.0, 1.0];
  skyIntensity: f64 = 1.0;
  sunDir: StaticArray<f64> = [0.5, 0.8, 0.35];
  sunColor: StaticArray<f64> = [3.0, 2.8, 2.5]; // irradiance E (RGB)
  sunRadius: f64 = 3; // degrees: soft shadows
  exposure: f64 = 0.7;
  model: Uint8Array = new Uint8Array(0);
}

function num(v: JsonValue | null, name: string, lo: f64, hi: f64, dflt: f64): f64 {
  if (v === null) return dflt;
  if (!v.isNumber || !(v.num >= lo && v.num <= hi)) { fail("render init: " + name + " must be a number from " + formatDouble(lo) + " to " + formatDouble(hi)); return dflt; }
  return v.num;
}

function int(v: JsonValue | null, name: string, lo: i32, hi: i32, dflt: i32): i32 {
  let x = num(v, name, <f64>lo, <f64>hi, <f64>dflt);
  if (x != Math.floor(x)) { fail("render init: " + name + " must be an integer"); return dflt; }
  return <i32>x;
}

function vec3(v: JsonValue | null, name: string, into: StaticArray<f64>, at: i32): bool {
  if (v === null) return false;
  if (!v.isArray || v.length != 3) { fail("render init: " + name + " must be [x, y, z]"); return false; }
  for (let i = 0; i < 3; i++) {
    let c = v.at(i);
    if (!c.isNumber || !isFinite(c.num)) { fail("render init: " + name + " must hold numbers"); return false; }
    into[at + i] = c.num;
  }
  return true;
}

function bool_(v: JsonValue | null, name: string, dflt: bool): bool {
  if (v === null) return dflt;
  if (!v.isBool) { fail("render init: " + name + " must be true or false"); return dflt; }
  return v.boolValue;
}

/** The scene, or null after fail(). */
export function parseScene(bytes: Uint8Array): Scene | null {
  let parsed = parseJson(bytes);
  if (!parsed.ok) { fail("render init: input is not JSON: " + parsed.error); return null; }
  let o = parsed.unwrap();
  if (!o.isObject) { fail("render init: input must be a JSON object"); return null; }
  let s = new Scene();
  s.width = int(o.get("width"), "width", 1, 8192, s.width);
  s.height = int(o.get("height"), "height", 1, 8192, s.height);
  if (<i64>s.width * <i64>s.height > 4_000_000) { fail("render init: at most 4 million pixels"); return null; }
  s.samples = int(o.get("samples"), "samples", 1, 65536, s.samples);
  s.maxDepth = int(o.get("maxDepth"), "maxDepth", 1, 64, s.maxDepth);
  s.seed = int(o.get("seed"), "seed", 0, 65535, s.seed);
  s.normalize = bool_(o.get("normalize"), "normalize", true);
  let up = o.get("up");
  if (up !== null) {
    if (!up.isString || (up.str != "y" && up.str != "z")) { fail("render init: up must be \"y\" or \"z\""); return null; }
    s.upZ = up.str == "z";
  }
  s.rotateY = num(o.get("rotateY"), "rotateY", -360, 360, 0);
  let cam = o.get("camera");
  if (cam !== null) {
    if (!cam.isObject) { fail("render init: camera must be an object"); return null; }
    s.hasPosition = vec3(cam.get("position"), "camera.position", s.cam, 0);
    s.hasLookAt = vec3(cam.get("lookAt"), "camera.lookAt", s.cam, 3);
    vec3(cam.get("up"), "camera.up", s.cam, 6);
    s.fov = num(cam.get("fov"), "camera.fov", 1, 170, s.fov);
  }
  vec3(o.get("albedo"), "albedo", s.albedo, 0);
  s.ground = bool_(o.get("ground"), "ground", true);
  if (vec3(o.get("groundAlbedo"), "groundAlbedo", s.groundAlbedo, 0)) {
    for (let i = 0; i < 3; i++) s.groundAlbedo2[i] = s.groundAlbedo[i] * 0.7;
  }
  s.checker = num(o.get("checker"), "checker", 0, 1e6, s.checker);
  let sky = o.get("sky");
  if (sky !== null) {
    if (!sky.isObject) { fail("render init: sky must be an object"); return null; }
    vec3(sky.get("zenith"), "sky.zenith", s.zenith, 0);
    vec3(sky.get("horizon"), "sky.horizon", s.horizon, 0);
    s.skyIntensity = num(sky.get("intensity"), "sky.intensity", 0, 1e6, s.skyIntensity);
  }
  let sun = o.get("sun");
  if (sun !== null) {
    if (!sun.isObject) { fail("render init: sun must be an object"); return null; }
    vec3(sun.get("direction"), "sun.direction", s.sunDir, 0);
    vec3(sun.get("color"), "sun.color", s.sunColor, 0);
    s.sunRadius = num(sun.get("radius"), "sun.radius", 0, 45, s.sunRadius);
  }
  s.exposure = num(o.get("exposure"), "exposure", 0, 1e6, s.exposure);
  let model = o.get("model");
  let model64 = o.get("modelBase64");
  if (model !== null) {
    if (!model.isString) { fail("render init: model must be a string (OBJ or PLY text)"); return null; }
    s.model = Uint8Array.wrap(String.UTF8.encode(model.str));
  } else if (model64 !== null) {
    if (!model64.isString) { fail("render init: modelBase64 must be a string"); return null; }
    s.model = base64Decode(model64.str);
  } else { fail("render init: model or modelBase64 is required"); return null; }
  return failed() ? null : s;
}

function b64val(c: i32): i32 {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c == 43 || c == 45) return 62; // + or -
  if (c == 47 || c == 95) return 63; // / or _
  return -1;
}

/** Standard or URL-safe base64; padding and whitespace ignored. */
export function base64Decode(s: string): Uint8Array {
  let out = new Uint8Array((s.length * 3) / 4 + 3);
  let acc: u32 = 0, bits = 0, n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c == 61 || c == 32 || c == 10 || c == 13 || c == 9) continue;
    let v = b64val(c);
    if (v < 0) { fail("render init: modelBase64 is not base64"); return new Uint8Array(0); }
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) { bits -= 8; out[n++] = <u8>(acc >> bits); }
  }
  return out.subarray(0, n);
}
