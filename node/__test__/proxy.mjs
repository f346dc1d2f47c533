// Starts a live infinicache-proxy (with its local Lambda platform and cache
// nodes) for the tests, on ephemeral ports; makes certificates for the TLS
// tests.
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

// A binary of the workspace's build, or the one the environment variable names.
function builtBinary(name, envVar, profile) {
  const bin = process.env[envVar] || join(repo, 'target', profile, name)
  if (!existsSync(bin)) {
    throw new Error(
      `${name} not found at ${bin}: run cargo build --workspace --bins ` +
        `(or set ${envVar} to the ${name} binary)`,
    )
  }
  return bin
}

export function proxyBinary(profile = 'debug') {
  return builtBinary('infinicache-proxy', 'INFINICACHE_PROXY_BIN', profile)
}

export function testCertsBinary(profile = 'debug') {
  return builtBinary('test-certs', 'INFINICACHE_TEST_CERTS_BIN', profile)
}

/**
 * Writes a fresh test CA and a server certificate it signed for `localhost`
 * and `127.0.0.1` into `dir` (the tests crate's `test-certs` binary);
 * resolves to their PEM files: `{ ca, cert, key }`.
 */
export async function makeCerts(dir, { profile = 'debug' } = {}) {
  const { stdout } = await promisify(execFile)(testCertsBinary(profile), [dir])
  const paths = stdout.trim().split(/\s+/)
  if (paths.length !== 3) throw new Error(`test-certs printed ${JSON.stringify(stdout)}, not three paths`)
  const [ca, cert, key] = paths
  return { ca, cert, key }
}

/**
 * Starts the proxy and resolves once it prints its ready line:
 * `{ address, nodes, platform, stop() }`. `stop()` sends SIGTERM and waits.
 */
export async function startProxy({
  poolSize = 6,
  dataShards = 4,
  parityShards = 2,
  extraArgs = [],
  profile = 'debug',
  readyTimeoutMs = 30_000,
} = {}) {
  // A fresh data directory (the directory object store lives there): one
  // left by an earlier run would be recovered by the proxy.
  const dataDir = mkdtempSync(join(tmpdir(), 'infinicache-test-'))
  const args = [
    '--data-dir', dataDir,
    '--client-listen', '127.0.0.1:0',
    '--node-listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0',
    '--resp-listen', '127.0.0.1:0',
    '--warmup-interval', '0s',
    '--pool-size', String(poolSize),
    '--data-shards', String(dataShards),
    '--parity-shards', String(parityShards),
    ...extraArgs,
  ]
  const child = spawn(proxyBinary(profile), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFINICACHE_LOG: process.env.INFINICACHE_LOG ?? 'warn' },
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-8192)
    if (process.env.INFINICACHE_TEST_VERBOSE) process.stderr.write(chunk)
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))

  const ready = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const match = /^infinicache-proxy ready client=(\S+) nodes=(\S+) platform=(\S+)/.exec(line)
      if (match) resolve({ address: match[1], nodes: match[2], platform: match[3] })
    })
    child.once('error', reject)
    exited.then(({ code, signal }) =>
      reject(new Error(`infinicache-proxy exited early (code ${code}, signal ${signal}): ${stderr}`)),
    )
  })
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`infinicache-proxy not ready after ${readyTimeoutMs} ms: ${stderr}`)),
      readyTimeoutMs,
    )
  })
  let info
  try {
    info = await Promise.race([ready, timeout])
  } catch (err) {
    child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
    throw err
  } finally {
    clearTimeout(timer)
  }

  let stopped = null
  return {
    ...info,
    pid: child.pid,
    stop() {
      if (!stopped) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000)
        stopped = exited.finally(() => {
          clearTimeout(kill)
          rmSync(dataDir, { recursive: true, force: true })
        })
      }
      return stopped
    },
  }
}
