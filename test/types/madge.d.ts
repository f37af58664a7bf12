// The part of madge's API (it ships no types) that test/import-cycles.test.ts uses.
declare module 'madge' {
  interface MadgeConfig {
    baseDir?: string;
    fileExtensions?: string[];
    tsConfig?: string;
  }
  interface MadgeResult {
    /** Each import circle as the files along it, relative to baseDir. */
    circular(): string[][];
    /** Every file read, with the files it imports. */
    obj(): Record<string, string[]>;
    /** Imports that could not be resolved to a file (other packages resolve to their builds and are left out). */
    warnings(): { skipped: string[] };
  }
  export default function madge(paths: string | string[], config?: MadgeConfig): Promise<MadgeResult>;
}
