// room: a stateful guest server (a chat room) for service instances. Unlike
// the other programs, it is meant to run as a persistent instance
// (GuestPool.createInstance): members and messages stay in linear memory
// between requests. Called as a plain function, every call sees the state
// after init (an empty room).
//
//   POST /join  {"name"}          {"member": name, "members": [...]}
//   POST /leave {"name"}          {"left": name, "members": [...]}
//   POST /say   {"name","text"}   {"seq": n}            (name must be a member)
//   GET  /messages?since=N&limit=L  {"messages": [{"seq","name","text"}], "next": seq}: at most L
//                                 (default 10000) messages after seq N; `next` is the seq to ask after
//   GET  /state                   {"members","count","seq","digest","ballastBytes","churned"}
//   POST /churn {"bytes"}         rewrites that many bytes of the ballast: {"churned": total}
//   POST /trap                    traps (unreachable) before touching any state
//
// Init input (optional JSON): {"ballastMiB": N} allocates and fills N MiB of
// state that the room keeps (part of the digest), so that benchmarks can make
// a server of any size; /churn makes a writable working set of it.
// `digest` is a 64-bit FNV-1a style hash (16 hex digits) of the whole state:
// members, messages, seq, the ballast and the churn cursor. Bad input answers
// 400 {"error": ...}; an unknown route 404.

import {
  JsonValue, JsonWriter, parseJson, readInput, readInputString, requestMethod, requestPath,
  requestQuery, setContentType, setStatus, writeOutputWriter, INVALID_INT,
} from "../lib";

class Message {
  constructor(public seq: i64, public name: string, public text: string) {}
}

const MAX_NAME = 256;
const MAX_TEXT = 65536;
const MAX_BALLAST_MIB = 768;
/** Messages in one /messages answer at most. */
const MAX_PAGE: i64 = 10000;

const members = new Array<string>();
const messages = new Array<Message>();
let seq: i64 = 0;
let ballast = new Uint8Array(0);
let churnCursor: i32 = 0;
let churned: i64 = 0;

export function init(): void {
  let text = readInputString().trim();
  if (text.length == 0) return;
  let parsed = parseJson(readInput());
  if (!parsed.ok) throw new Error("room: init input must be JSON: " + parsed.error);
  let doc = parsed.unwrap();
  if (!doc.isObject) throw new Error("room: init input must be a JSON object");
  let mib = doc.get("ballastMiB");
  if (mib === null) return;
  if (!mib.isNumber || mib.num < 0 || mib.num > <f64>MAX_BALLAST_MIB || mib.num != Math.floor(mib.num)) {
    throw new Error("room: ballastMiB must be an integer from 0 to " + MAX_BALLAST_MIB.toString());
  }
  let size = <i32>mib.num * 1024 * 1024;
  ballast = new Uint8Array(size);
  // Deterministic, non-zero contents (every page really is state).
  let x: u64 = 0x9e3779b97f4a7c15;
  let p = ballast.dataStart;
  for (let i = 0; i + 8 <= size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    store<u64>(p + <usize>i, x);
  }
}

export function handle(): i32 {
  setContentType("application/json");
  let method = requestMethod();
  let path = requestPath();
  if (method == "GET" && path == "/state") return state();
  if (method == "GET" && path == "/messages") return list();
  if (method == "POST" && path == "/trap") unreachable();
  if (method != "POST" || (path != "/join" && path != "/leave" && path != "/say" && path != "/churn")) {
    return fail(404, "no route " + method + " " + path);
  }
  let parsed = parseJson(readInput());
  if (!parsed.ok) return fail(400, "invalid JSON: " + parsed.error);
  let body = parsed.unwrap();
  if (!body.isObject) return fail(400, "the body must be a JSON object");
  if (path == "/churn") return churn(body);
  let name = field(body, "name");
  if (name === null || name.length == 0 || name.length > MAX_NAME) return fail(400, "name must be a string of 1 to " + MAX_NAME.toString() + " characters");
  let who = changetype<string>(name);
  if (path == "/join") {
    if (members.indexOf(who) < 0) members.push(who);
    let w = new JsonWriter();
    w.beginObject().key("member").string(who).key("members");
    writeMembers(w);
    w.endObject();
    return ok(w);
  }
  if (path == "/leave") {
    let at = members.indexOf(who);
    if (at < 0) return fail(400, who + " is not a member");
    members.splice(at, 1);
    let w = new JsonWriter();
    w.beginObject().key("left").string(who).key("members");
    writeMembers(w);
    w.endObject();
    return ok(w);
  }
  // /say
  let text = field(body, "text");
  if (text === null || text.length > MAX_TEXT) return fail(400, "text must be a string of at most " + MAX_TEXT.toString() + " characters");
  if (members.indexOf(who) < 0) return fail(400, who + " is not a member");
  seq++;
  messages.push(new Message(seq, who, changetype<string>(text)));
  let w = new JsonWriter();
  w.beginObject().key("seq").int(seq).endObject();
  return ok(w);
}

function field(body: JsonValue, key: string): string | null {
  let v = body.get(key);
  if (v === null || !v.isString) return null;
  return v.str;
}

function churn(body: JsonValue): i32 {
  let v = body.get("bytes");
  if (v === null || !v.isNumber || v.num < 0 || v.num != Math.floor(v.num) || v.num > <f64>ballast.length) {
    return fail(400, "bytes must be an integer from 0 to the ballast size (" + ballast.length.toString() + ")");
  }
  let n = <i32>v.num;
  let len = ballast.length;
  let p = ballast.dataStart;
  let mark = <u8>(churned * 31 + 7);
  for (let i = 0; i < n; i++) {
    store<u8>(p + <usize>churnCursor, load<u8>(p + <usize>churnCursor) ^ (mark | 1));
    churnCursor++;
    if (churnCursor >= len) churnCursor = 0;
  }
  churned += n;
  let w = new JsonWriter();
  w.beginObject().key("churned").int(churned).endObject();
  return ok(w);
}

function list(): i32 {
  let q = requestQuery();
  let since = q.getInt("since", 0);
  if (since == INVALID_INT || since < 0) return fail(400, "since must be a non-negative integer");
  // A page at a time: a long-lived room holds more than one answer may carry (the host caps output).
  let limit = q.getInt("limit", MAX_PAGE);
  if (limit == INVALID_INT || limit < 1 || limit > MAX_PAGE) return fail(400, "limit must be an integer from 1 to " + MAX_PAGE.toString());
  let w = new JsonWriter();
  w.beginObject().key("messages").beginArray();
  // Messages are in seq order, seq n at index n - 1.
  let first = <i32>min(since, <i64>messages.length);
  let end = <i32>min(<i64>first + limit, <i64>messages.length);
  for (let i = first; i < end; i++) {
    let m = messages[i];
    w.beginObject().key("seq").int(m.seq).key("name").string(m.name).key("text").string(m.text).endObject();
  }
  w.endArray().key("next").int(end < messages.length ? messages[end - 1].seq : seq).endObject();
  return ok(w);
}

function state(): i32 {
  let w = new JsonWriter();
  w.beginObject().key("members");
  writeMembers(w);
  w.key("count").int(messages.length).key("seq").int(seq).key("digest").string(digest())
    .key("ballastBytes").int(ballast.length).key("churned").int(churned).endObject();
  return ok(w);
}

const FNV_PRIME: u64 = 0x100000001b3;

function mix(h: u64, v: u64): u64 {
  return (h ^ v) * FNV_PRIME;
}

function mixString(h: u64, s: string): u64 {
  let p = changetype<usize>(s);
  let n = s.length;
  h = mix(h, <u64>n);
  for (let i = 0; i < n; i++) h = mix(h, <u64>load<u16>(p + (<usize>i << 1)));
  return h;
}

function digest(): string {
  let h: u64 = 0xcbf29ce484222325;
  h = mix(h, <u64>members.length);
  for (let i = 0; i < members.length; i++) h = mixString(h, members[i]);
  h = mix(h, <u64>messages.length);
  for (let i = 0; i < messages.length; i++) {
    let m = messages[i];
    h = mixString(mixString(mix(h, <u64>m.seq), m.name), m.text);
  }
  h = mix(mix(mix(h, <u64>seq), <u64>churnCursor), <u64>churned);
  let len = ballast.length;
  h = mix(h, <u64>len);
  let p = ballast.dataStart;
  let i = 0;
  for (; i + 8 <= len; i += 8) h = mix(h, load<u64>(p + <usize>i));
  for (; i < len; i++) h = mix(h, <u64>load<u8>(p + <usize>i));
  let hex = h.toString(16);
  while (hex.length < 16) hex = "0" + hex;
  return hex;
}

function writeMembers(w: JsonWriter): void {
  w.beginArray();
  for (let i = 0; i < members.length; i++) w.string(members[i]);
  w.endArray();
}

function ok(w: JsonWriter): i32 {
  writeOutputWriter(w.out);
  return 0;
}

function fail(status: i32, message: string): i32 {
  setStatus(status);
  let w = new JsonWriter();
  w.beginObject().key("error").string(message).endObject();
  writeOutputWriter(w.out);
  return 0;
}
