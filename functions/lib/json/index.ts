// JSON: parse (strict, exact numbers), build, and write like JSON.stringify.
export * from "./value";
export * from "./parser";
export * from "./writer";
