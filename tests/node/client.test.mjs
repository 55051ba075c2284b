// node-postgres (`pg`, pinned in package.json) against a running cloudpg: the server's
// address comes from PGHOST/PGPORT, which tests/python/test_clients_node.py sets.
import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";

const config = { user: "postgres", database: "awscc" };

async function withClient(body) {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

test("a seed SELECT with a bound parameter, as a named statement run twice", () =>
  withClient(async (client) => {
    const query = {
      name: "endpoints-by-region",
      text: "SELECT id, subnet_id, preserve_client_ip, tags FROM awscc.ec2.instance_connect_endpoints WHERE region = $1 ORDER BY id",
    };
    const first = await client.query({ ...query, values: ["us-east-1"] });
    assert.equal(first.rowCount, 5);
    assert.match(first.rows[0].id, /^ice-/);
    assert.equal(typeof first.rows[0].preserve_client_ip, "boolean");
    // json columns arrive parsed: node-postgres decodes by the type OID the server reports.
    assert.ok(first.rows[0].tags === null || typeof first.rows[0].tags === "object");
    const again = await client.query({ ...query, values: ["eu-west-1"] });
    assert.ok(again.rows.every((r) => r.id.startsWith("ice-")));
    assert.deepEqual(
      first.fields.map((f) => f.name),
      ["id", "subnet_id", "preserve_client_ip", "tags"],
    );
  }));

test("integers, booleans and NULL parameters keep their types", () =>
  withClient(async (client) => {
    const r = await client.query("SELECT $1::int4 AS n, $2::bool AS b, $3::text IS NULL AS missing", [42, true, null]);
    assert.deepEqual(r.rows[0], { n: 42, b: true, missing: true });
    assert.equal(r.fields[0].dataTypeID, 23, "int4");
  }));

test("errors carry PostgreSQL's SQLSTATE and the connection stays usable", () =>
  withClient(async (client) => {
    await assert.rejects(client.query("SELECT * FROM awscc.ec2.no_such_table"), (e) => e.code === "42P01");
    await assert.rejects(client.query("SELECT $1::int4", ["not a number"]), (e) => e.code === "22P02");
    const r = await client.query("SELECT count(*)::int4 AS n FROM awscc.ec2.vpcs WHERE region = $1", ["us-east-1"]);
    assert.ok(r.rows[0].n > 0);
  }));

test("a pool runs queries concurrently on several connections", async () => {
  const pool = new pg.Pool({ ...config, max: 4 });
  try {
    const results = await Promise.all(
      ["us-east-1", "us-west-2", "eu-west-1", "us-east-1", "us-west-2", "eu-west-1"].map((region) =>
        pool.query("SELECT count(*) AS n FROM awscc.ec2.instance_connect_endpoints WHERE region = $1", [region]),
      ),
    );
    // count(*) is bigint: node-postgres returns it as a string, as it does for PostgreSQL.
    assert.ok(results.every((r) => typeof r.rows[0].n === "string" && Number(r.rows[0].n) >= 0));
  } finally {
    await pool.end();
  }
});
