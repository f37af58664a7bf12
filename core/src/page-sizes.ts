/** The two page sizes of guest memory: the kernel's (what the pager maps and sends) and WebAssembly's (what a memory grows by). */
export const PAGE_SIZE = 4096;
export const WASM_PAGE_SIZE = 65536;
