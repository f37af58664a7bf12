// One total order over JSON values, for sorting and range filters:
// numbers (numerically) < strings (by UTF-16 code units, as JavaScript's `<`)
// < booleans (false < true) < everything else (null, arrays, objects and
// missing fields, all equal). `descending` reverses the order within each
// kind but keeps the kinds in place, so missing fields stay last.

import { JsonKind, JsonValue } from "../lib";

function rank(v: JsonValue | null): i32 {
  if (v === null) return 3;
  if (v.kind == JsonKind.Number) return 0;
  if (v.kind == JsonKind.String) return 1;
  if (v.kind == JsonKind.Bool) return 2;
  return 3;
}

/** -1, 0 or 1. */
export function compareValues(a: JsonValue | null, b: JsonValue | null, descending: bool): i32 {
  let ra = rank(a);
  let rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 3) return 0;
  let x = changetype<JsonValue>(a);
  let y = changetype<JsonValue>(b);
  let c = 0;
  if (ra == 1) c = x.str < y.str ? -1 : x.str > y.str ? 1 : 0;
  else c = x.num < y.num ? -1 : x.num > y.num ? 1 : 0; // numbers and booleans
  return descending ? -c : c;
}

/** The field of `element` at dotted `key` (the element itself for ""), or null. */
export function fieldOf(element: JsonValue, key: string): JsonValue | null {
  return element.getPath(key);
}
