// StackQL's awscc names, derived here the way its provider generator derives them (npm
// `pluralize`, pinned in package.json, and its snake-case rules), for every resource type
// cloudpg serves; each table and column spelling must resolve on the running server.
// tests/python/test_clients_node.py sets PGHOST/PGPORT.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import zlib from "node:zlib";
import pluralize from "pluralize";
import pg from "pg";

const schemas = new URL("../../crates/resource-schemas/data/schemas.pack", import.meta.url);

// Every type of the schema pack (see crates/resource-schemas/README.md), its properties read
// from the compressed blob the index points at.
function packedTypes(bytes) {
  assert.equal(bytes.subarray(0, 8).toString("latin1"), "CPGSCHM2", "not a schema pack");
  const indexLength = Number(bytes.readBigUInt64LE(8));
  const index = JSON.parse(zlib.gunzipSync(bytes.subarray(16, 16 + indexLength)));
  const blobs = bytes.subarray(16 + indexLength);
  return index.types.map(({ schemas: [offset, length], ...type }) => ({
    ...type,
    ...JSON.parse(zlib.inflateRawSync(blobs.subarray(offset, offset + length))),
  }));
}

// Table: the resource name, a capital run before a capitalised word split off it, then a
// lower-case letter before a capital split, all lower case; then npm pluralize.
function resourceSnake(name) {
  return name
    .replace(/([A-Z]+)([A-Z][a-z])/g, (_, run, word) => `${run.toLowerCase()}_${word.toLowerCase()}`)
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/_+/g, "_");
}

// Column: acronyms folded in order, each pair of a word character and a capital split.
const ACRONYMS = [
  "DB", "ARN", "WAN", "URL", ["VPCDHCP", "VpcDhcp"], ["EC2Fleet", "Ec2_Fleet"], "VPC", "DHCP", "DNS", "IP",
  "IAM", "IPAM", "TLS", "SSM", "CNAME", "SQ", "ML", "SKU", "KMS", "OK", "CA", "ID", "TTL", "URI", "LB",
  "SNS", "AWS", "ACL", "AZ", "API", "MSK", "ECS", "EBS", "CWE", "SSE", "HPO", "LF", "WAL", "MFA", ["OAuth", "Oauth"],
];
const RESERVED = new Set(["values", "schema", "database", "format", "update", "force", "match"]);

function foldAcronyms(name) {
  for (const a of ACRONYMS) {
    const [from, to] = Array.isArray(a) ? a : [a, a[0] + a.slice(1).toLowerCase()];
    name = name.split(from).join(to);
  }
  return name;
}

// A property, or the parts of a nested primary identifier path (joined by `_`).
function columnName(...parts) {
  const column = parts.map(foldAcronyms).join("_").replace(/[\w]([A-Z])/g, (m) => `${m[0]}_${m[1]}`).toLowerCase();
  return RESERVED.has(column) ? `_${column}` : column;
}

function quoted(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

test("every StackQL table and column spelling resolves", async () => {
  const types = packedTypes(fs.readFileSync(schemas));
  const client = new pg.Client({ user: "postgres", database: "awscc" });
  await client.connect();
  const failures = [];
  let checked = 0;
  try {
    for (const type of types.filter((t) => t.handlers)) {
      const [, service, resource] = type.typeName.split("::");
      const table = `awscc.${service.toLowerCase()}.${pluralize(resourceSnake(resource))}`;
      const columns = [...new Set(Object.keys(type.properties ?? {}).map((p) => columnName(p)))];
      const ids = (type.primaryIdentifier ?? []).map((p) => columnName(...p.replace(/^\/properties\//, "").split("/")));
      const listed = type.handlers.list ? [[`${table}_list_only`, ids]] : [];
      for (const [name, select] of [[table, columns], ...listed]) {
        const sql = `SELECT ${["region", ...select].map(quoted).join(", ")} FROM ${name} WHERE false`;
        try {
          await client.query(sql);
          checked += 1;
        } catch (e) {
          failures.push(`${type.typeName}: ${sql}\n  ${e.code} ${e.message}`);
        }
      }
    }
  } finally {
    await client.end();
  }
  assert.ok(checked > 3000, `only ${checked} tables checked`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} spellings did not resolve`);
});
