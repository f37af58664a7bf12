// A 400 answer with a JSON body `{"error": message}`, for handle() entry points
// that refuse their input.

import { JsonWriter } from "./json/index";
import { writeOutputWriter } from "./output";
import { setStatus } from "./response";

/** Sets status 400 and writes `{"error": message}`; returns 0 for handle() to return. */
export function badRequest(message: string): i32 {
  setStatus(400);
  let w = new JsonWriter();
  w.beginObject().key("error").string(message).endObject();
  writeOutputWriter(w.out);
  return 0;
}
