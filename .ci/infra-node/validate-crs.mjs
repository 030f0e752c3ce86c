// Validate custom resources (JSON list on stdin) against the upstream CRD schemas of Gateway API,
// prometheus-operator and cert-manager, as published by kubernetes-models, in two passes:
//   1. the generated validators: types, required fields, enums, patterns;
//   2. strictness: each object as a typed TypeScript literal, so `tsc` rejects any field the CRD does not
//      define (excess property checks), as `kubectl apply --validate=strict` would on a cluster.
// Prints one line per object; exits 1 if any object fails either pass or has a kind with no known schema.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const PACKAGES = {
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

function modulePath(obj) {
  const [group, version] = obj.apiVersion.split("/");
  if (!PACKAGES[group]) throw new Error(`no schema for API group ${group}`);
  return `${PACKAGES[group]}/${group}/${version}/${obj.kind}`;
}

async function validate(obj) {
  const mod = await import(modulePath(obj));
  new mod[obj.kind](obj).validate();
}

function strictErrors(objects) {
  // Line i + 1 of the file holds object i, so tsc's line numbers name the object.
  const lines = objects.map((obj, i) => {
    const type = `import("${modulePath(obj)}").I${obj.kind}`;
    return `export const o${i}: ${type} = ${JSON.stringify(obj)};`;
  });
  writeFileSync("strict-check.ts", lines.join("\n") + "\n");
  const args = ["--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext",
    "strict-check.ts"];
  const errors = new Map();
  try {
    execFileSync("node_modules/.bin/tsc", args, { encoding: "utf8" });
  } catch (err) {
    for (const m of (err.stdout || "").matchAll(/^strict-check\.ts\((\d+),\d+\): error TS\d+: (.*)$/gm)) {
      const i = Number(m[1]) - 1;
      errors.set(i, [...(errors.get(i) || []), m[2]]);
    }
    if (errors.size === 0) throw new Error(`tsc failed: ${err.stdout || err.message}`);
  }
  return errors;
}

const objects = JSON.parse(readFileSync(0, "utf8"));
const strict = objects.length ? strictErrors(objects) : new Map();
let failed = 0;
for (const [i, obj] of objects.entries()) {
  const name = `${obj.kind}/${obj.metadata?.name} (${obj.apiVersion})`;
  const problems = [];
  try {
    await validate(obj);
  } catch (err) {
    problems.push(err.message);
  }
  problems.push(...(strict.get(i) || []));
  failed += problems.length ? 1 : 0;
  console.log(problems.length ? `FAIL ${name}: ${problems.join("; ")}` : `ok   ${name} (schema + strict)`);
}
process.exit(failed ? 1 : 0);
