// The raw host imports of the guest ABI (module `flurry`), exactly as
// docs/guest-abi.md lists them. Programs should use the wrappers in the other
// files of this library; these are exported for the rare case that needs them.
// Pointers and lengths are i32 offsets into this module's memory.

// @ts-ignore: decorator
@external("flurry", "input_size")
export declare function input_size(): i32;

// @ts-ignore: decorator
@external("flurry", "input_read")
export declare function input_read(ptr: usize, len: i32, offset: i32): i32;

// @ts-ignore: decorator
@external("flurry", "output_write")
export declare function output_write(ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("flurry", "request_method")
export declare function request_method(ptr: usize, cap: i32): i32;

// @ts-ignore: decorator
@external("flurry", "request_path")
export declare function request_path(ptr: usize, cap: i32): i32;

// @ts-ignore: decorator
@external("flurry", "request_query")
export declare function request_query(ptr: usize, cap: i32): i32;

// @ts-ignore: decorator
@external("flurry", "request_header_count")
export declare function request_header_count(): i32;

// @ts-ignore: decorator
@external("flurry", "request_header_name")
export declare function request_header_name(i: i32, ptr: usize, cap: i32): i32;

// @ts-ignore: decorator
@external("flurry", "request_header_value")
export declare function request_header_value(i: i32, ptr: usize, cap: i32): i32;

// @ts-ignore: decorator
@external("flurry", "response_status")
export declare function response_status(code: i32): void;

// @ts-ignore: decorator
@external("flurry", "response_header")
export declare function response_header(namePtr: usize, nameLen: i32, valuePtr: usize, valueLen: i32): void;

// @ts-ignore: decorator
@external("flurry", "log")
export declare function log(level: i32, ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("flurry", "now_ms")
export declare function now_ms(): f64;

// @ts-ignore: decorator
@external("flurry", "monotonic_ms")
export declare function monotonic_ms(): f64;

// @ts-ignore: decorator
@external("flurry", "entropy")
export declare function entropy(ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("flurry", "progress")
export declare function progress(done: i32, total: i32): void;
