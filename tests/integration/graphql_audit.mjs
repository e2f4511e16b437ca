// The graphql-http server audits (GraphQL-over-HTTP conformance) against a running crmd.
//
//   node tests/integration/graphql_audit.mjs URL API_KEY
//
// Every request of the audit carries X-API-Key (a key of an `unlimited` organization, so no
// rate limit interferes). Prints one JSON array on stdout: per audit its id, name (which starts
// with MUST, SHOULD or MAY), status ("ok", "notice", "warn", "error") and, for a failure, the
// reason and the response's status, content type and body. Exit status 0 unless the script
// itself broke; tests/integration/test_graphql.py judges the results.
import { serverAudits } from '../../tools/node_modules/graphql-http/lib/index.mjs';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: graphql_audit.mjs URL API_KEY');
  process.exit(2);
}

async function fetchFn(input, init) {
  const headers = new Headers((init && init.headers) || undefined);
  headers.set('x-api-key', key);
  return fetch(input, { ...(init || {}), headers });
}

const out = [];
for (const a of serverAudits({ url, fetchFn })) {
  let r;
  try {
    r = await a.fn();
  } catch (e) {
    r = { id: a.id, name: a.name, status: 'error', reason: 'audit threw: ' + (e && e.stack ? e.stack : e) };
  }
  const item = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    item.reason = r.reason;
    if (r.response) {
      item.responseStatus = r.response.status;
      item.responseType = r.response.headers.get('content-type');
      try {
        item.responseBody = (await r.response.clone().text()).slice(0, 500);
      } catch (e) {
        item.responseBody = '(body already read)';
      }
    }
  }
  out.push(item);
}
process.stdout.write(JSON.stringify(out) + '\n');
