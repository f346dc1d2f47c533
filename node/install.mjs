// Builds the native binding with cargo and copies it to ./infinicache.node.
// Run by `npm install` (the package's install script); needs a Rust
// toolchain and the infinicache workspace around this directory, no network
// beyond what cargo needs for crates it has not fetched yet.
//
//   INFINICACHE_NODE_PROFILE=debug   build in the dev profile (default: release)
//   CARGO                            the cargo to run (default: cargo on PATH)

import { spawn } from 'node:child_process'
import { copyFileSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const profile = process.env.INFINICACHE_NODE_PROFILE ?? 'release'
const args = ['build', '-p', 'infinicache-node-binding', '--lib', '--message-format=json-render-diagnostics']
if (profile === 'release') args.push('--release')
else if (profile !== 'debug') args.push('--profile', profile)

const cargo = spawn(process.env.CARGO ?? 'cargo', args, { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] })
let library = null
createInterface({ input: cargo.stdout }).on('line', (line) => {
  let message
  try {
    message = JSON.parse(line)
  } catch {
    return
  }
  if (message.reason === 'compiler-message' && message.message?.rendered) {
    process.stderr.write(message.message.rendered)
  }
  if (message.reason === 'compiler-artifact' && message.target?.name === 'infinicache_node_binding') {
    library = message.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? library
  }
})
cargo.on('error', (err) => {
  console.error(`infinicache: cannot run cargo (${err.message}); a Rust toolchain is needed to build the binding`)
  process.exit(1)
})
cargo.on('close', (code) => {
  if (code !== 0) process.exit(code ?? 1)
  if (!library) {
    console.error('infinicache: cargo built no infinicache_node_binding library')
    process.exit(1)
  }
  // Copy then rename, so a running process never loads a half-written file.
  const target = join(here, 'infinicache.node')
  copyFileSync(library, `${target}.tmp`)
  renameSync(`${target}.tmp`, target)
  console.error(`infinicache: built ${target} (${profile})`)
})
