// Filtering an array by one test on a field. The test's operand is read as
// JSON when it parses as a scalar (`eq=3`, `eq=true`, `eq=null`,
// `eq="3"`) and as a plain string otherwise (`eq=abc`).
//
//   eq, ne              equal / not equal (same kind and value)
//   lt, lte, gt, gte    the order of compare.ts, only between values of the same kind
//   contains            a string field containing the operand text as a substring
//                       (`contains=3` finds "a3"), or an array field with an
//                       element equal to the operand
//   exists              the field is present (exists=false: absent)
//
// Elements without the field pass only `ne` and `exists=false`.

import { JsonKind, JsonValue, parseJsonString, Query } from "../lib";
import { compareValues, fieldOf } from "./compare";

const TESTS: string[] = ["eq", "ne", "lt", "lte", "gt", "gte", "contains", "exists"];

/** The elements of `arr` that pass; null when the query names no test. */
export function filterArray(arr: JsonValue, query: Query): JsonValue | null {
  let test = "";
  let raw = "";
  for (let i = 0; i < TESTS.length; i++) {
    let v = query.get(TESTS[i]);
    if (v !== null) {
      test = TESTS[i];
      raw = v;
      break;
    }
  }
  if (test.length == 0) return null;
  let key = query.getOr("key", "");
  let operand = operandOf(raw);
  let out = JsonValue.newArray();
  for (let i = 0; i < arr.length; i++) {
    let element = arr.at(i);
    if (passes(test, fieldOf(element, key), operand, raw)) out.push(element);
  }
  return out;
}

function operandOf(raw: string): JsonValue {
  let parsed = parseJsonString(raw);
  if (parsed.ok) {
    let v = parsed.unwrap();
    if (!v.isArray && !v.isObject) return v;
  }
  return JsonValue.ofString(raw);
}

function sameScalar(a: JsonValue, b: JsonValue): bool {
  if (a.kind != b.kind) return false;
  if (a.kind == JsonKind.String) return a.str == b.str;
  if (a.kind == JsonKind.Number || a.kind == JsonKind.Bool) return a.num == b.num;
  return a.kind == JsonKind.Null;
}

function passes(test: string, field: JsonValue | null, operand: JsonValue, raw: string): bool {
  if (test == "exists") {
    let wanted = !(operand.isBool && !operand.boolValue);
    return (field !== null) == wanted;
  }
  if (field === null) return test == "ne";
  let f = changetype<JsonValue>(field);
  if (test == "eq") return sameScalar(f, operand);
  if (test == "ne") return !sameScalar(f, operand);
  if (test == "contains") {
    if (f.isString) return f.str.includes(operand.isString ? operand.str : raw);
    if (f.isArray) {
      for (let i = 0; i < f.length; i++) {
        if (sameScalar(f.at(i), operand)) return true;
      }
    }
    return false;
  }
  // Range tests only compare like with like.
  if (f.kind != operand.kind || f.isNull || f.isArray || f.isObject) return false;
  let c = compareValues(f, operand, false);
  if (test == "lt") return c < 0;
  if (test == "lte") return c <= 0;
  if (test == "gt") return c > 0;
  return c >= 0; // gte
}
