// echo: answers with a JSON reflection of the request, for testing the
// gateway and the host's request plumbing byte for byte.
//
// {"method":"POST","path":"/a/b","query":"x=1","headers":{"content-type":"text/plain"},
//  "body":"hello","bodyLength":5}
//
// Header names are lower case; a name sent more than once has its values
// joined with ", " (in the order the host gives them). `body` is the body as a
// string when it is valid UTF-8; otherwise `body` is null and `bodyBase64`
// holds the bytes. `bodyLength` is always the length in bytes.

import {
  base64EncodeAt, decodeUtf8, isValidUtf8, JsonWriter, readInput, requestHeaders,
  requestMethod, requestPath, requestQueryString, setContentType, writeOutputWriter,
} from "../lib";

export function handle(): i32 {
  let body = readInput();
  let w = new JsonWriter();
  w.beginObject();
  w.key("method").string(requestMethod());
  w.key("path").string(requestPath());
  w.key("query").string(requestQueryString());
  w.key("headers").beginObject();
  let headers = requestHeaders();
  let done = new Set<i32>();
  for (let i = 0; i < headers.length; i++) {
    if (done.has(i)) continue;
    let name = headers[i].name;
    let value = headers[i].value;
    for (let j = i + 1; j < headers.length; j++) {
      if (headers[j].name == name) {
        value += ", " + headers[j].value;
        done.add(j);
      }
    }
    w.key(name).string(value);
  }
  w.endObject();
  if (isValidUtf8(body)) {
    w.key("body").string(decodeUtf8(body));
  } else {
    w.key("body").nullValue();
    let b64 = base64EncodeAt(body.dataStart, body.length);
    w.key("bodyBase64").string(String.UTF8.decodeUnsafe(b64.dataStart, <usize>b64.length));
  }
  w.key("bodyLength").int(body.length);
  w.endObject();
  setContentType("application/json");
  writeOutputWriter(w.out);
  return 0;
}
