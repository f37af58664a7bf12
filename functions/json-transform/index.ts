// json-transform: real work on a JSON document. The body is the document;
// the query says what to do with it (see functions/README.md):
//
//   op=format                 the document re-serialized (compact, as JSON.stringify)
//   op=sort&key=K&order=desc  an array sorted by field K (stable)
//   op=filter&key=K&gt=3      array elements whose field K passes a test
//   op=stats&key=K            count/sum/mean/min/max of numeric field K
//   op=pick&keys=a,b          each element reduced to the listed fields
//
// `path=a.b` selects the part of the document to work on (default: all of
// it); `offset` and `limit` slice array results. Invalid JSON or a bad query
// answers 400 with {"error": ..., "offset"?: byte offset}.

import {
  INVALID_INT, JsonValue, JsonWriter, parseJson, readInput, requestQuery,
  setContentType, setStatus, writeOutputWriter, Query,
} from "../lib";
import { filterArray } from "./filter";
import { pickFields } from "./pick";
import { sortArray } from "./sort";
import { writeStats } from "./stats";

export function handle(): i32 {
  let query = requestQuery();
  setContentType("application/json");
  let parsed = parseJson(readInput());
  if (!parsed.ok) {
    let w = new JsonWriter();
    w.beginObject().key("error").string("invalid JSON: " + parsed.error).key("offset").int(parsed.offset).endObject();
    return fail(w);
  }
  let doc = parsed.unwrap();
  let path = query.getOr("path", "");
  let found = doc.getPath(path);
  if (found === null) return failWith("path not found: " + path);
  let target = changetype<JsonValue>(found);

  let op = query.getOr("op", "format");
  let w = new JsonWriter();
  if (op == "format") {
    w.value(target);
    return succeed(w);
  }
  if (op == "stats") {
    if (!target.isArray) return failWith("stats needs an array");
    writeStats(w, target, query.getOr("key", ""));
    return succeed(w);
  }
  if (op != "sort" && op != "filter" && op != "pick") return failWith("unknown op: " + op);
  if (!target.isArray) return failWith(op + " needs an array");

  let result: JsonValue;
  if (op == "sort") {
    let order = query.getOr("order", "asc");
    if (order != "asc" && order != "desc") return failWith("order must be asc or desc");
    result = sortArray(target, query.getOr("key", ""), order == "desc");
  } else if (op == "filter") {
    let filtered = filterArray(target, query);
    if (filtered === null) return failWith("filter needs key and one of eq, ne, lt, lte, gt, gte, contains, exists");
    result = changetype<JsonValue>(filtered);
  } else {
    let keys = query.get("keys");
    if (keys === null) return failWith("pick needs keys=a,b,...");
    result = pickFields(target, keys.split(","));
  }
  let sliced = slice(result, query);
  if (sliced === null) return failWith("offset and limit must be non-negative integers");
  w.value(changetype<JsonValue>(sliced));
  return succeed(w);
}

/** Applies `offset` and `limit` to an array result; null when they are invalid. */
function slice(arr: JsonValue, query: Query): JsonValue | null {
  let offset = query.getInt("offset", 0);
  let limit = query.getInt("limit", <i64>arr.length);
  if (offset == INVALID_INT || limit == INVALID_INT || offset < 0 || limit < 0) return null;
  let out = JsonValue.newArray();
  let end = min(<i64>arr.length, offset + limit);
  for (let i = offset; i < end; i++) out.push(arr.at(<i32>i));
  return out;
}

function succeed(w: JsonWriter): i32 {
  writeOutputWriter(w.out);
  return 0;
}

function fail(w: JsonWriter): i32 {
  setStatus(400);
  writeOutputWriter(w.out);
  return 0;
}

function failWith(message: string): i32 {
  let w = new JsonWriter();
  w.beginObject().key("error").string(message).endObject();
  return fail(w);
}

