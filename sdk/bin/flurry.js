#!/usr/bin/env node
// The `flurry` command. npm links this file when it installs the package, which in a
// checkout is before the TypeScript build exists: so it only loads the built CLI, and
// says how to build it when it is missing.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(
    `flurry: the CLI is not built (${fileURLToPath(cli)} is missing).\n` +
      '  In a Flurry checkout: npm run setup (or npx tsc -b sdk).\n',
  );
  process.exit(1);
}
await import(cli.href);
