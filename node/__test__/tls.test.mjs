// TLS (`tls`, `tlsCaFile`, `tlsServerName`) against a proxy started with
// `--tls-cert`/`--tls-key`: a client trusting the proxy's CA works; a plain
// client, or one trusting another CA, is UNAVAILABLE; an unusable CA file is
// INVALID_ARGUMENT.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'

import { makeCerts, startProxy } from './proxy.mjs'

const require = createRequire(import.meta.url)
const { Client, InfinicacheError, InvalidArgumentError, UnavailableError } = require('../index.js')

let dir
let certs
let otherCa
let proxy

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'infinicache-tls-test-'))
  certs = await makeCerts(join(dir, 'proxy'))
  otherCa = (await makeCerts(join(dir, 'other'))).ca
  proxy = await startProxy({ extraArgs: ['--tls-cert', certs.cert, '--tls-key', certs.key] })
})

after(async () => {
  await proxy?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** An assert.rejects validator: the error class and code, saying `want`. */
function failsWith(cls, code, want) {
  return (err) => {
    assert.ok(err instanceof cls, `${err.name}: ${err.message}`)
    assert.ok(err instanceof InfinicacheError)
    assert.equal(err.code, code)
    assert.match(err.message, want)
    return true
  }
}

const unavailable = (want) => failsWith(UnavailableError, 'UNAVAILABLE', want)
const invalid = (want) => failsWith(InvalidArgumentError, 'INVALID_ARGUMENT', want)

test('a client trusting the proxy CA round-trips 1 MiB', async () => {
  for (const tls of [undefined, true]) {
    const client = await Client.connect({ addresses: proxy.address, tls, tlsCaFile: certs.ca })
    try {
      const value = Buffer.alloc(1 << 20, `tls-${tls}`)
      assert.ok((await client.put(`tls-${tls}`, value)) >= 1)
      assert.ok((await client.get(`tls-${tls}`)).equals(value))
      assert.equal(await client.exists(`tls-${tls}`), true)
      assert.equal(await client.delete(`tls-${tls}`), true)
    } finally {
      await client.close()
    }
  }
})

test('the certificate is verified by the address host or tlsServerName', async () => {
  // The certificate names localhost and 127.0.0.1.
  const port = proxy.address.slice(proxy.address.lastIndexOf(':') + 1)
  const byName = await Client.connect({ addresses: `localhost:${port}`, tls: true, tlsCaFile: certs.ca })
  await byName.put('tls-by-name', 'by name')
  await byName.close()
  const named = await Client.connect({ addresses: proxy.address, tlsCaFile: certs.ca, tlsServerName: 'localhost' })
  assert.equal((await named.get('tls-by-name')).toString(), 'by name')
  await named.close()
  await assert.rejects(
    Client.connect({ addresses: proxy.address, tlsCaFile: certs.ca, tlsServerName: 'other.example' }),
    unavailable(/TLS/),
  )
})

test('a plain client is UNAVAILABLE', async () => {
  for (const tls of [undefined, null, false]) {
    await assert.rejects(Client.connect({ addresses: proxy.address, tls }), unavailable(/TLS/))
  }
  // The lazy client reports it at its first operation.
  const lazy = new Client({ addresses: proxy.address })
  await assert.rejects(lazy.get('k'), unavailable(/TLS/))
  assert.equal(lazy.connected, false)
  await lazy.close()
})

test('a client trusting another CA is UNAVAILABLE', async () => {
  await assert.rejects(Client.connect({ addresses: proxy.address, tlsCaFile: otherCa }), (err) => {
    unavailable(/TLS/)(err)
    assert.match(err.message, /certificate|issuer/i)
    return true
  })
})

test('an unusable CA file or server name is INVALID_ARGUMENT at connect', async () => {
  const missing = join(dir, 'missing.pem')
  await assert.rejects(Client.connect({ addresses: proxy.address, tlsCaFile: missing }), invalid(/missing\.pem/))
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'not a certificate\n')
  await assert.rejects(Client.connect({ addresses: proxy.address, tlsCaFile: notPem }), invalid(/no PEM certificate/))
  await assert.rejects(Client.connect({ addresses: proxy.address, tlsCaFile: '' }), invalid(/tlsCaFile is empty/))
  await assert.rejects(
    Client.connect({ addresses: proxy.address, tlsCaFile: certs.ca, tlsServerName: 'not a name' }),
    invalid(/not a valid name/),
  )
})

test('TLS options of other types are TypeErrors', () => {
  assert.throws(() => new Client({ addresses: proxy.address, tls: 'yes' }), {
    name: 'TypeError',
    message: /options\.tls must be a boolean, got string/,
  })
  assert.throws(() => new Client({ addresses: proxy.address, tlsCaFile: Buffer.from(certs.ca) }), {
    name: 'TypeError',
    message: /options\.tlsCaFile must be a string, got Buffer/,
  })
  assert.throws(() => new Client({ addresses: proxy.address, tlsServerName: 42 }), {
    name: 'TypeError',
    message: /options\.tlsServerName must be a string, got number/,
  })
})
