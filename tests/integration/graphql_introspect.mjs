// Introspection of a running crmd through graphql-js: getIntrospectionQuery() (the default
// options, and every option graphql-js 16 has) is POSTed to /graphql, buildClientSchema() is
// run on each answer and printSchema() on the schema built.
//
//   node tests/integration/graphql_introspect.mjs URL API_KEY < {"documents": ["{ ... }", ...]}
//
// stdin (optional, may be empty): documents to parse and validate against the client schema,
// so the tests can check that graphql-js and the server agree on what is valid.
// Prints one JSON object: {ok, error, variants: [{name, status, contentType, built, error}],
// sdlLength, sdl, types: {Name: {kind, fields: {f: {type, args: {a: type}}}, inputFields:
// {f: type}, enumValues: [..]}}, queryType, mutationType, documents: [{syntaxError, errors}]}.
import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isObjectType,
  parse,
  printSchema,
  validate,
} from '../../tools/node_modules/graphql/index.mjs';
import { readFileSync } from 'node:fs';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: graphql_introspect.mjs URL API_KEY');
  process.exit(2);
}

async function post(query) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      'x-api-key': key,
    },
    body: JSON.stringify({ query }),
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (e) {
    body = null;
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, body };
}

const out = { ok: false, variants: [] };
const variants = [
  ['default', {}],
  [
    'full',
    {
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    },
  ],
];
let schema = null;
for (const [name, opts] of variants) {
  const v = { name };
  out.variants.push(v);
  try {
    const r = await post(getIntrospectionQuery(opts));
    v.status = r.status;
    v.contentType = r.contentType;
    if (!r.body || !r.body.data || r.body.errors) {
      v.built = false;
      v.error = 'no data or errors: ' + r.text.slice(0, 800);
      continue;
    }
    const s = buildClientSchema(r.body.data);
    v.built = true;
    if (name === 'default') schema = s;
  } catch (e) {
    v.built = false;
    v.error = String(e && e.stack ? e.stack : e).slice(0, 1500);
  }
}

if (schema) {
  try {
    const sdl = printSchema(schema);
    out.sdlLength = sdl.length;
    out.sdl = sdl;
    out.queryType = schema.getQueryType() && schema.getQueryType().name;
    out.mutationType = schema.getMutationType() && schema.getMutationType().name;
    const types = {};
    for (const [tn, t] of Object.entries(schema.getTypeMap())) {
      if (tn.startsWith('__')) continue;
      const d = { kind: t.constructor.name };
      if (isObjectType(t)) {
        d.fields = {};
        for (const [fn, f] of Object.entries(t.getFields())) {
          const args = {};
          for (const a of f.args) args[a.name] = String(a.type);
          d.fields[fn] = { type: String(f.type), named: getNamedType(f.type).name, args };
        }
      }
      if (isInputObjectType(t)) {
        d.inputFields = {};
        for (const [fn, f] of Object.entries(t.getFields())) d.inputFields[fn] = String(f.type);
      }
      if (isEnumType(t)) d.enumValues = t.getValues().map((x) => x.name);
      types[tn] = d;
    }
    out.types = types;
    out.ok = out.variants.every((v) => v.built);
  } catch (e) {
    out.error = String(e && e.stack ? e.stack : e).slice(0, 1500);
  }
}

let input = '';
try {
  input = readFileSync(0, 'utf8');
} catch (e) {
  input = '';
}
if (input.trim()) {
  const docs = JSON.parse(input).documents || [];
  out.documents = docs.map((d) => {
    try {
      const ast = parse(d);
      if (!schema) return { syntaxError: null, errors: ['no schema'] };
      return { syntaxError: null, errors: validate(schema, ast).map((e) => e.message) };
    } catch (e) {
      return { syntaxError: String(e.message || e), errors: [] };
    }
  });
}
process.stdout.write(JSON.stringify(out) + '\n');
