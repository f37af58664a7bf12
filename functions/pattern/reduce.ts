// reduce for pattern: checks every clone's output and summarizes.
//
//   {"count":4,"ok":true,"failed":[],"distinctEntropy":4,"distinctChecksums":1,
//    "distinctMathRandom":4,"verifiedBytes":67108864,"restored":4}
//
// ok means: count outputs, each valid JSON with "ok":true and "index" equal to
// its position, and every clone's entropy different. `failed` lists the
// positions that fail. With verify "all", `distinctChecksums` is 1 when every
// clone saw the same parent memory.

import { JsonValue, JsonWriter, parseJson, readReduceInput } from "../lib";

export function reduceOutputs(count: i32): JsonWriter {
  let parts = readReduceInput(count);
  let failed = new Array<i32>();
  let entropies = new Set<string>();
  let checksums = new Set<string>();
  let randoms = new Set<f64>();
  let verified: f64 = 0;
  let restored = 0;
  for (let i = 0; i < parts.length; i++) {
    let parsed = parseJson(parts[i]);
    if (!parsed.ok) {
      failed.push(i);
      continue;
    }
    let out = parsed.unwrap();
    let ok = out.get("ok");
    let index = out.get("index");
    if (ok === null || !ok.isBool || !ok.boolValue || index === null || !index.isNumber || index.num != <f64>i) {
      failed.push(i);
    }
    entropies.add(stringField(out, "entropyHex"));
    checksums.add(stringField(out, "checksum"));
    let random = out.get("mathRandom");
    if (random !== null && random.isNumber) randoms.add(random.num);
    let bytes = out.get("verifiedBytes");
    if (bytes !== null && bytes.isNumber) verified += bytes.num;
    let r = out.get("restored");
    if (r !== null && r.isBool && r.boolValue) restored++;
  }
  let w = new JsonWriter();
  w.beginObject();
  w.key("count").int(count);
  w.key("ok").bool(failed.length == 0 && entropies.size == count);
  w.key("failed").beginArray();
  for (let i = 0; i < failed.length; i++) w.int(failed[i]);
  w.endArray();
  w.key("distinctEntropy").int(entropies.size);
  w.key("distinctChecksums").int(checksums.size);
  w.key("distinctMathRandom").int(randoms.size);
  w.key("verifiedBytes").number(verified);
  w.key("restored").int(restored);
  w.endObject();
  return w;
}

function stringField(v: JsonValue, key: string): string {
  let f = v.get(key);
  return f !== null && f.isString ? f.str : "";
}
