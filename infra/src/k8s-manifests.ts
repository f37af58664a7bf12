#!/usr/bin/env node
/**
 * Checks Kubernetes manifests against the API's schemas without a cluster: each YAML document is
 * validated by the kubernetes-models class of its apiVersion and kind (JSON schemas of the Kubernetes
 * OpenAPI, compiled with ajv, bundled in the package: no network). Types, required fields, enums and
 * formats are checked; unknown fields are not refused (the schemas allow them, as the API server does
 * without strict field validation).
 *
 *   node infra/dist/k8s-manifests.js infra/deploy/k8s/gateway.yaml infra/deploy/k8s/worker-host.yaml
 *   const problems = await checkManifests(text);   // [] when every document is valid
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

interface Validatable {
  validate(): void;
}

/** Every problem found in the documents of one YAML text, each naming the document's kind and name. */
export async function checkManifests(text: string): Promise<string[]> {
  const problems: string[] = [];
  // YAML 1.1, as kubectl reads manifests: `defaultMode: 0440` is octal there, and 440 in YAML 1.2.
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    if (doc.errors.length) {
      problems.push(...doc.errors.map((e) => `YAML: ${e.message}`));
      continue;
    }
    const obj = doc.toJS() as Record<string, unknown> | null;
    if (obj === null) continue;
    const what = `${String(obj.kind)} ${String((obj.metadata as { name?: unknown } | undefined)?.name)}`;
    const Model = await modelOf(obj.apiVersion, obj.kind);
    if (!Model) {
      problems.push(`${what}: no schema for apiVersion ${String(obj.apiVersion)}, kind ${String(obj.kind)}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** The model class of a kind: `v1` kinds live in kubernetes-models/v1, the others in <group>/<version>. */
async function modelOf(apiVersion: unknown, kind: unknown): Promise<(new (data: unknown) => Validatable) | undefined> {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  try {
    const specifier = `kubernetes-models/${apiVersion}/${kind}`;
    const mod = (await import(specifier)) as Record<string, new (data: unknown) => Validatable>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: k8s-manifests.js FILE.yaml...');
    process.exit(2);
  }
  let failed = false;
  for (const file of files) {
    const problems = await checkManifests(readFileSync(file, 'utf8'));
    for (const p of problems) console.error(`${file}: ${p}`);
    if (problems.length) failed = true;
    else console.log(`${file}: valid`);
  }
  process.exit(failed ? 1 : 0);
}
