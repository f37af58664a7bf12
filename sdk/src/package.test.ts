// @flurry/sdk as it would be published: what `npm pack` puts in it, what its package.json
// promises, and that the library entry stays free of the CLI and its dependencies.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import madge from 'madge';
import semver from 'semver';
import { beforeAll, describe, expect, it } from 'vitest';

const sdk = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(sdk, '..');
const manifest = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8'));

interface PackedFile {
  path: string;
}

describe('sdk package', () => {
  let packed: string[];

  beforeAll(async () => {
    if (!existsSync(join(sdk, 'dist', 'index.js'))) throw new Error('sdk/dist is missing: run `npx tsc -b sdk` before the tests');
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--workspace', 'sdk'], { cwd: root });
    packed = (JSON.parse(stdout) as { files: PackedFile[] }[])[0]!.files.map((file) => file.path);
  });

  it('sdk package - the tarball has the bin, the built library with its types, README and LICENSE; no tests, stubs or build state', () => {
    expect(packed).toEqual(expect.arrayContaining(['bin/flurry.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'README.md', 'LICENSE', 'package.json']));
    expect(packed.filter((path) => /\.test\.|\/testing\/|tsbuildinfo/.test(path))).toEqual([]);
  });

  it('sdk package - publishable: not private, licensed as the repository, every export and the bin in the tarball', () => {
    expect(manifest.private).toBeUndefined();
    expect(manifest.license).toBe('MIT');
    expect(readFileSync(join(sdk, 'LICENSE'), 'utf8')).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'));
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
    const targets = Object.values(manifest.exports as Record<string, string | Record<string, string>>).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target)));
    expect(targets.length).toBeGreaterThan(2);
    for (const target of [...targets, ...Object.values(manifest.bin as Record<string, string>)]) expect(packed, target).toContain(target.replace(/^\.\//, ''));
  });

  it("sdk package - engines ask at least what each dependency's engines ask (and the library's fetch and Web Crypto need)", () => {
    const ours = manifest.engines.node as string;
    for (const name of Object.keys(manifest.dependencies)) {
      const theirs = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).engines?.node as string | undefined;
      if (theirs !== undefined) expect(semver.subset(ours, theirs), `${name} needs node ${theirs}`).toBe(true);
    }
    // Global fetch and ReadableStream (18) and the global crypto of verifyCallbackSignature (19).
    expect(semver.subset(ours, '>=19')).toBe(true);
    expect(semver.satisfies(process.versions.node, ours)).toBe(true);
  });

  it('sdk package - the bin, installed before the build, says how to build instead of failing obscurely', async () => {
    const unbuilt = mkdtempSync(join(tmpdir(), 'flurry-unbuilt-'));
    try {
      mkdirSync(join(unbuilt, 'bin'));
      copyFileSync(join(sdk, 'bin', 'flurry.js'), join(unbuilt, 'bin', 'flurry.js'));
      writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ type: manifest.type }));
      const run = await promisify(execFile)(process.execPath, [join(unbuilt, 'bin', 'flurry.js'), 'hosts']).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`flurry: the CLI is not built (${join(unbuilt, 'dist', 'cli.js')} is missing).\n  In a Flurry checkout: npm run setup (or npx tsc -b sdk).\n`);
    } finally {
      rmSync(unbuilt, { recursive: true, force: true });
    }
  });

  it('sdk package - the library entry imports neither the CLI nor any npm package', async () => {
    const graph = await madge(join(sdk, 'src', 'index.ts'), { baseDir: sdk, fileExtensions: ['ts'] });
    const reached = Object.keys(graph.obj());
    // A walk that read nothing would pass: the client and its parts are there.
    expect(reached).toEqual(expect.arrayContaining(['src/index.ts', 'src/client.ts', 'src/jobs.ts', 'src/transport.ts']));
    expect(reached.filter((file) => /(^|\/)cli[-.]|local-fleet-key/.test(file))).toEqual([]);
    expect(graph.warnings().skipped).toEqual([]);
    // madge leaves npm packages out of the graph: read each file's imports for them (relative and node: only).
    const specifiers = reached.flatMap((file) => [...readFileSync(join(sdk, file), 'utf8').matchAll(/\bfrom '([^']+)'|\bimport\(?'([^']+)'/g)].map((m) => `${file}: ${m[1] ?? m[2]}`));
    expect(specifiers.length).toBeGreaterThan(20);
    expect(specifiers.filter((line) => !/: (\.\.?\/|node:)/.test(line))).toEqual([]);
  });
});
