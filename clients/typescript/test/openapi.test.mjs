// The client's types (src/types.ts, read with the TypeScript compiler) against the server's own OpenAPI
// document (/openapi.json of a real `tripstream serve`), so neither can change without the other: the stream's
// event types and each one's fields, the request's fields and which are required, the error codes and the
// other enums, and the shapes of the plan, the error body, the destinations and /health.
//
// The rule for each object: the same field names; a field the client requires, the server always sends (the
// client may be more lenient than the document, never less). Where the client's type has an index signature
// (`[key: string]: unknown`), its fields must be the server's, but need not be all of them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import ts from "typescript";

import { startServer } from "../support/server.mjs";

const TYPES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/types.ts");

let server;
let spec;

before(async () => {
  server = await startServer();
  const response = await fetch(`${server.baseUrl}/openapi.json`);
  assert.equal(response.status, 200);
  spec = await response.json();
});
after(async () => {
  await server?.stop();
});

// ---- types.ts, as the compiler reads it

/** `{ fields: Map<name, { optional, type }>, open }` of an object type's node (`open`: an index signature). */
function objectOf(members) {
  const fields = new Map();
  let open = false;
  for (const member of members) {
    if (ts.isIndexSignatureDeclaration(member)) open = true;
    if (ts.isPropertySignature(member)) fields.set(member.name.getText(), { optional: Boolean(member.questionToken), type: member.type });
  }
  return { fields, open };
}

function readTypes() {
  const source = ts.createSourceFile(TYPES, readFileSync(TYPES, "utf8"), ts.ScriptTarget.ES2022, true);
  const interfaces = new Map();
  const aliases = new Map();
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement)) {
      const bases = (statement.heritageClauses ?? []).flatMap((clause) => clause.types.map((t) => t.expression.getText()));
      interfaces.set(statement.name.text, { ...objectOf(statement.members), bases });
    } else if (ts.isTypeAliasDeclaration(statement)) {
      aliases.set(statement.name.text, statement.type);
    }
  }
  /** An interface's fields, its bases' included. */
  const object = (name) => {
    const found = interfaces.get(name);
    assert.ok(found, `types.ts has no interface ${name}`);
    const fields = new Map();
    for (const base of found.bases) for (const [k, v] of object(base).fields) fields.set(k, v);
    for (const [k, v] of found.fields) fields.set(k, v);
    return { fields, open: found.open };
  };
  /** The string literals of a union type node (`"a" | "b"`). */
  const literals = (node) => {
    const parts = ts.isUnionTypeNode(node) ? node.types : [node];
    return parts.map((part) => {
      assert.ok(ts.isLiteralTypeNode(part) && ts.isStringLiteral(part.literal), `not a string literal: ${part.getText()}`);
      return part.literal.text;
    });
  };
  const union = (name) => {
    assert.ok(aliases.has(name), `types.ts has no type ${name}`);
    return literals(aliases.get(name));
  };
  return { object, union, literals, aliases };
}

// ---- the document

function schema(nameOrRef) {
  const name = nameOrRef.replace("#/components/schemas/", "");
  const found = spec.components.schemas[name];
  assert.ok(found, `the document has no schema ${name}`);
  return found;
}

/** An object schema's `{ fields: Map<name, schema>, required: Set }`, through `$ref` and `allOf`. */
function specObject(node) {
  if (node.$ref) return specObject(schema(node.$ref));
  const fields = new Map();
  const required = new Set(node.required ?? []);
  for (const part of node.allOf ?? []) {
    const inner = specObject(part);
    for (const [k, v] of inner.fields) fields.set(k, v);
    for (const r of inner.required) required.add(r);
  }
  for (const [k, v] of Object.entries(node.properties ?? {})) fields.set(k, v);
  return { fields, required };
}

/** The schema behind a property that may be `oneOf: [X, null]`. */
function unwrapNullable(node) {
  const options = (node.oneOf ?? []).filter((option) => option.type !== "null");
  return options.length === 1 ? options[0] : node;
}

// ---- the comparisons

function assertSameObject(tsObject, specObj, label) {
  const tsNames = [...tsObject.fields.keys()].sort();
  const specNames = [...specObj.fields.keys()].sort();
  if (tsObject.open) {
    for (const name of tsNames) assert.ok(specObj.fields.has(name), `${label}: types.ts has ${name}, the document does not`);
  } else {
    assert.deepEqual(tsNames, specNames, `${label}: the fields of types.ts (actual) and of the document (expected)`);
  }
  for (const [name, field] of tsObject.fields) {
    if (!field.optional) assert.ok(specObj.required.has(name), `${label}.${name} is required in types.ts but optional in the document`);
  }
}

describe("types.ts and /openapi.json", () => {
  test("every event type of the stream, with its fields", () => {
    const types = readTypes();
    const union = types.aliases.get("StreamEvent");
    const tsEvents = new Map(
      union.types.map((member) => {
        const object = types.object(member.getText());
        return [types.literals(object.fields.get("type").type)[0], { name: member.getText(), object }];
      }),
    );
    // Each `data:` line: an event, plus `streamId` and `resumeToken` on the first of a response.
    const data = schema("StreamEventData");
    const extra = specObject(data.allOf.find((part) => !part.$ref));
    const specEvents = new Map(
      schema("StreamEvent").oneOf.map((variant) => {
        const object = specObject(variant);
        const kind = object.fields.get("type").enum;
        assert.equal(kind.length, 1);
        for (const [k, v] of extra.fields) object.fields.set(k, v);
        return [kind[0], object];
      }),
    );
    assert.deepEqual([...tsEvents.keys()].sort(), [...specEvents.keys()].sort(), "event types: types.ts (actual), the document (expected)");
    for (const [kind, { name, object }] of tsEvents) assertSameObject(object, specEvents.get(kind), `${name} (${kind})`);
    // What the stream's response says each message is.
    const stream = spec.paths["/api/v1/plans/generate/stream"].post.responses["200"].content["text/event-stream"];
    const message = specObject(stream.schema);
    assert.equal(message.fields.get("data").contentSchema.$ref, "#/components/schemas/StreamEventData");
    assert.ok(Object.keys(stream.examples).length >= 2, "the stream has example transcripts");
  });

  test("the request's fields, and which are required", () => {
    const types = readTypes();
    const request = types.object("PlanRequest");
    const body = spec.paths["/api/v1/plans/generate"].post.requestBody.content["application/json"].schema;
    const specRequest = specObject(body);
    assertSameObject(request, specRequest, "PlanRequest");
    const tsRequired = [...request.fields].filter(([, f]) => !f.optional).map(([n]) => n).sort();
    assert.deepEqual(tsRequired, [...specRequest.required].sort(), "required request fields");
    assert.deepEqual(types.union("Budget").sort(), schema("BudgetLevel").enum.slice().sort());
    assert.deepEqual(types.union("Language").sort(), schema("Language").enum.slice().sort());
    // The same request in the query, for EventSource.
    const query = spec.paths["/api/v1/plans/generate/stream"].get.parameters.filter((p) => p.in === "query").map((p) => p.name);
    for (const name of request.fields.keys()) assert.ok(query.includes(name), `${name} is a query parameter of GET …/stream`);
  });

  test("the error codes and the error body", () => {
    const types = readTypes();
    assert.deepEqual(types.union("ErrorCode").sort(), schema("ErrorCode").enum.slice().sort(), "error codes: types.ts (actual), the document (expected)");
    const tsBody = types.object("ErrorBody");
    const specBody = specObject(schema("ErrorResponse"));
    assertSameObject(tsBody, specBody, "ErrorBody");
    const inner = tsBody.fields.get("error").type;
    assertSameObject(objectOf(inner.members), specObject(specBody.fields.get("error")), "ErrorBody.error");
  });

  test("the plan, the steps and the other enums", () => {
    const types = readTypes();
    const pairs = [
      ["Plan", "Plan"],
      ["Day", "Day"],
      ["Activity", "Activity"],
      ["DayWeather", "DayWeather"],
      ["PlanDestination", "PlanDestination"],
      ["Usage", "Usage"],
      ["PlanMetadata", "Metadata"],
      ["LatLon", "GeoPoint"],
      ["DestinationInfo", "DestinationEntry"],
      ["Catalog", "Destinations"],
      ["Health", "Health"],
    ];
    for (const [tsName, specName] of pairs) assertSameObject(types.object(tsName), specObject(schema(specName)), tsName);
    assert.deepEqual(types.union("Step").sort(), schema("Step").enum.slice().sort());
    assert.deepEqual(types.union("Category").sort(), schema("Category").enum.slice().sort());
    const source = types.object("DayWeather").fields.get("source").type;
    assert.deepEqual(types.literals(source).sort(), schema("WeatherSource").enum.slice().sort());
    const plan = specObject(schema("Plan"));
    assert.equal(unwrapNullable(plan.fields.get("budget")).$ref, "#/components/schemas/BudgetLevel");
  });
});
