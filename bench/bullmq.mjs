// bench/bullmq.mjs: the BullMQ side of bench/jobs.py (BullMQ as pinned in tools/package.json).
//
//   node bench/bullmq.mjs MODE --redis URL [--n N] [--conc C] [--batch B] [--rate R]
//
// MODE enqueue: C concurrent producers call queue.add() until N jobs are added.
// MODE bulk:    queue.addBulk() in batches of B until N jobs are added.
// MODE work:    a Worker of concurrency C with a no-op processor drains N queued jobs.
// MODE latency: a Worker of concurrency C runs while one producer adds N jobs at R per second;
//               latency is finishedOn - timestamp of each job (ms, both stamped by BullMQ).
// Prints one JSON line. Finished jobs are kept like crmd's (count N + 1), not forever.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tools', 'package.json'));
const { Queue, Worker } = require('bullmq');

const args = process.argv.slice(2);
const mode = args[0];
const opt = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const url = new URL(opt('redis', 'redis://127.0.0.1:16379/0'));
const connection = { host: url.hostname, port: Number(url.port || 6379), db: Number((url.pathname || '/0').slice(1) || 0),
                     maxRetriesPerRequest: null };
const n = Number(opt('n', 10000));
const conc = Number(opt('conc', 8));
const batch = Number(opt('batch', 1000));
const rate = Number(opt('rate', 1000));
const name = 'crmd-bench';
const jobOpts = { removeOnComplete: { count: n + 1 }, removeOnFail: { count: n + 1 }, attempts: 5,
                  backoff: { type: 'exponential', delay: 1000 } };

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
}

async function main() {
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const secs = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = () => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1e6; };
  if (mode === 'enqueue') {
    let added = 0;
    const loop = async () => { while (added < n) { added++; await queue.add('noop', {}, jobOpts); } };
    await Promise.all(Array.from({ length: conc }, loop));
    console.log(JSON.stringify({ mode, n, secs: secs(), cpu_s: cpu() }));
  } else if (mode === 'bulk') {
    for (let added = 0; added < n; added += batch) {
      const k = Math.min(batch, n - added);
      await queue.addBulk(Array.from({ length: k }, () => ({ name: 'noop', data: {}, opts: jobOpts })));
    }
    console.log(JSON.stringify({ mode, n, secs: secs(), cpu_s: cpu() }));
  } else if (mode === 'work' || mode === 'latency') {
    let done = 0;
    const lat = [];
    let finish;
    const all = new Promise((r) => { finish = r; });
    const worker = new Worker(name, async () => {}, { connection, concurrency: conc,
                                                      removeOnComplete: { count: n + 1 } });
    worker.on('completed', (job) => {
      if (mode === 'latency') lat.push(job.finishedOn - job.timestamp);
      if (++done === n) finish();
    });
    await worker.waitUntilReady();
    const w0 = process.hrtime.bigint();
    if (mode === 'latency') {
      const start = Date.now();
      for (let i = 0; i < n; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await queue.add('noop', {}, jobOpts);
      }
    }
    await all;
    const wsecs = Number(process.hrtime.bigint() - w0) / 1e9;
    const c = cpu();
    await worker.close();
    lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ mode, n, secs: wsecs, cpu_s: c, p50_ms: pct(lat, 0.5), p99_ms: pct(lat, 0.99),
                                 max_ms: lat.length ? lat[lat.length - 1] : null }));
  } else {
    throw new Error('unknown mode ' + mode);
  }
  await queue.close();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
