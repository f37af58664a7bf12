// The Flurry guest library for AssemblyScript: the guest ABI
// (docs/guest-abi.md) in plain functions, plus the few tools guests keep
// needing (JSON, UTF-8, base64, hex, query strings, reduce framing).
//
//   import { readInput, writeOutputString } from "../lib";

export * from "./input";
export * from "./output";
export * from "./request";
export * from "./query";
export * from "./response";
export * from "./log";
export * from "./clock";
export * from "./entropy";
export * from "./progress";
export * from "./framing";
export * from "./bytes";
export * from "./utf8";
export * from "./base64";
export * from "./hex";
export * from "./float-parse";
export * from "./float-format";
export * from "./json/index";
export * from "./bad-request";
