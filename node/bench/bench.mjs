// Throughput and latency of PUT and GET through the Node.js binding, against
// a live proxy with the same settings as the Rust end-to-end benchmark
// (`cargo bench -p infinicache-tests --bench e2e`): RS(10+2), 12 cache nodes
// that stay connected (--node-idle-timeout 60s), release binaries.
//
//   cargo build --release --workspace --bins
//   cd node && npm install && npm run bench
//
// Settings (environment variables):
//   BENCH_SIZES        1KiB,10MiB     object sizes
//   BENCH_OPS          2000,100       timed ops per (op, size, concurrency), one per size
//   BENCH_CONCURRENCY  1,8            operations in flight (one pass each)
//   INFINICACHE_PROXY_BIN             proxy binary (default target/release/infinicache-proxy)
//   BENCH_COMPARE_CSV  ../target/e2e-bench.csv   the Rust benchmark's CSV: if present,
//                                     each row also shows Node/Rust throughput
//
// MB/s is 10^6 bytes per second of object data, as in the Rust benchmark.

import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startProxy } from '../__test__/proxy.mjs'

const require = createRequire(import.meta.url)
const { Client } = require('../index.js')

const KIB = 1024
const MIB = 1024 * KIB
const here = dirname(fileURLToPath(import.meta.url))

function parseSize(text) {
  const m = /^(\d+)\s*(b|k|kib|m|mib|g|gib)?$/i.exec(text.trim())
  if (!m) throw new Error(`bad size ${text}`)
  const unit = (m[2] ?? 'b').toLowerCase()[0]
  return Number(m[1]) * { b: 1, k: KIB, m: MIB, g: 1024 * MIB }[unit]
}
const list = (name, def, parse) => (process.env[name] ?? def).split(',').map(parse)
const label = (size) => (size >= MIB ? `${size / MIB}MiB` : size >= KIB ? `${size / KIB}KiB` : `${size}B`)

const sizes = list('BENCH_SIZES', '1KiB,10MiB', parseSize)
const opsPerSize = list('BENCH_OPS', '2000,100', Number)
const concurrency = list('BENCH_CONCURRENCY', '1,8', Number)
const compareCsv = process.env.BENCH_COMPARE_CSV ?? resolve(here, '..', '..', 'target', 'e2e-bench.csv')

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

/** Runs `ops` operations, `inFlight` at a time; returns per-op latencies (ms) and wall time (s). */
async function phase(ops, inFlight, op) {
  const latencies = new Array(ops)
  let next = 0
  const started = process.hrtime.bigint()
  async function worker() {
    while (next < ops) {
      const i = next++
      const t0 = process.hrtime.bigint()
      await op(i)
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  const wall = Number(process.hrtime.bigint() - started) / 1e9
  return { latencies: latencies.sort((a, b) => a - b), wall }
}

function row(op, size, inFlight, ops, { latencies, wall }) {
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length
  return {
    op,
    size,
    concurrency: inFlight,
    ops,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    mean,
    opsPerS: ops / wall,
    mbPerS: (ops * size) / wall / 1e6,
  }
}

function loadRust() {
  if (!existsSync(compareCsv)) return null
  const [header, ...lines] = readFileSync(compareCsv, 'utf8').trim().split('\n')
  const cols = header.split(',')
  const rows = new Map()
  for (const line of lines) {
    const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]))
    rows.set(`${r.op}/${r.size_bytes}/${r.concurrency}`, r)
  }
  return { rows, mtime: statSync(compareCsv).mtime }
}

async function main() {
  const proxy = await startProxy({
    profile: 'release',
    poolSize: 12,
    dataShards: 10,
    parityShards: 2,
    extraArgs: ['--node-idle-timeout', '60s'],
  })
  const client = await Client.connect({ addresses: proxy.address, timeoutMs: 120_000 })
  const rows = []
  try {
    for (const [s, size] of sizes.entries()) {
      const ops = opsPerSize[Math.min(s, opsPerSize.length - 1)]
      // A bounded key space (about 200 MiB of objects per size), a few payloads.
      const keys = Math.max(8, Math.min(ops, Math.floor((200 * MIB) / size)))
      const payloads = Array.from({ length: 4 }, () => randomBytes(size))
      const key = (i) => `bench-${label(size)}-${i % keys}`
      const stored = new Array(keys)
      for (let i = 0; i < keys; i++) {
        await client.put(key(i), payloads[i % payloads.length])
        stored[i] = i % payloads.length
      }
      for (const inFlight of concurrency) {
        let serial = 0
        const put = await phase(ops, inFlight, async (i) => {
          const p = (stored[i % keys] + 1 + (serial++ % 3)) % payloads.length
          await client.put(key(i), payloads[p])
          stored[i % keys] = p
        })
        rows.push(row('put', size, inFlight, ops, put))
        let checks = 0
        const get = await phase(ops, inFlight, async (i) => {
          const value = await client.get(key(i))
          if (!value || value.length !== size) throw new Error(`GET ${key(i)}: wrong length`)
          // Full comparisons on a sample, to keep the check out of the figures.
          if (i % 16 === 0 && !value.equals(payloads[stored[i % keys]])) {
            throw new Error(`GET ${key(i)}: wrong bytes`)
          }
          checks++
        })
        if (checks !== ops) throw new Error('missing GETs')
        rows.push(row('get', size, inFlight, ops, get))
      }
    }
  } finally {
    await client.close()
    await proxy.stop()
  }

  const rust = loadRust()
  const head = ['op', 'size', 'conc', 'ops', 'p50 ms', 'p99 ms', 'mean ms', 'ops/s', 'MB/s']
  if (rust) head.push('Rust MB/s', 'Node/Rust')
  console.log(`Node.js ${process.version}, RS(10+2), 12 nodes, proxy ${proxy.address}`)
  if (rust) console.log(`Rust figures: ${compareCsv} (written ${rust.mtime.toISOString()})`)
  const table = rows.map((r) => {
    const cells = [
      r.op,
      label(r.size),
      r.concurrency,
      r.ops,
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.mean.toFixed(2),
      r.opsPerS.toFixed(1),
      r.mbPerS.toFixed(2),
    ]
    if (rust) {
      const peer = rust.rows.get(`${r.op}/${r.size}/${r.concurrency}`)
      cells.push(peer ? Number(peer.mb_per_s).toFixed(2) : '-')
      cells.push(peer ? (r.mbPerS / Number(peer.mb_per_s)).toFixed(2) : '-')
    }
    return cells.map(String)
  })
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((c) => c[i].length)))
  const fmt = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  console.log(fmt(head))
  for (const cells of table) console.log(fmt(cells))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
