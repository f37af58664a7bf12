// Statistics of a numeric field over an array:
// {"count":n,"sum":s,"mean":s/n,"min":m,"max":M,"skipped":k}. The sum is
// taken in element order with doubles (as arr.reduce((a, b) => a + b, 0)),
// elements whose field is missing or not a number are skipped, and with no
// numbers at all mean, min and max are null.

import { JsonValue, JsonWriter } from "../lib";
import { fieldOf } from "./compare";

export function writeStats(w: JsonWriter, arr: JsonValue, key: string): void {
  let count = 0;
  let skipped = 0;
  let sum: f64 = 0;
  let lo: f64 = Infinity;
  let hi: f64 = -Infinity;
  for (let i = 0; i < arr.length; i++) {
    let f = fieldOf(arr.at(i), key);
    if (f === null || !f.isNumber) {
      skipped++;
      continue;
    }
    let x = f.num;
    count++;
    sum += x;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  w.beginObject();
  w.key("count").int(count);
  w.key("sum").number(sum);
  if (count > 0) {
    w.key("mean").number(sum / <f64>count);
    w.key("min").number(lo);
    w.key("max").number(hi);
  } else {
    w.key("mean").nullValue();
    w.key("min").nullValue();
    w.key("max").nullValue();
  }
  w.key("skipped").int(skipped);
  w.endObject();
}
