// status: returns a non-zero status on purpose, to test guest errors.
//
//   handle()   returns the query's `code` (default 7): the call fails with
//              "guest returned status 7". With `http=S` instead it sets HTTP
//              status S, answers {"status":S} and returns 0.
//   run(i, n)  returns the clone input as a decimal number (default 7).

import { INVALID_INT, parseIntStrict, readInputString, requestQuery, setStatus, writeOutputString } from "../lib";

export function handle(): i32 {
  let q = requestQuery();
  let http = q.getInt("http", -1);
  if (http != -1) {
    if (http == INVALID_INT) throw new Error("http must be an integer");
    setStatus(<i32>http);
    writeOutputString('{"status":' + http.toString() + "}");
    return 0;
  }
  let code = q.getInt("code", 7);
  if (code == INVALID_INT) throw new Error("code must be an integer");
  return <i32>code;
}

export function run(index: i32, count: i32): i32 {
  let text = readInputString().trim();
  if (text.length == 0) return 7;
  let code = parseIntStrict(text);
  if (code == INVALID_INT) throw new Error("clone input must be a decimal status");
  return <i32>code;
}
