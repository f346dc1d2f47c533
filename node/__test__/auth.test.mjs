// The `secret` option against a proxy started with `--secret`: without it,
// or with another one, the proxy refuses the client (UNAUTHORIZED); with it,
// the client works.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'

import { startProxy } from './proxy.mjs'

const require = createRequire(import.meta.url)
const { Client, InfinicacheError, UnauthorizedError } = require('../index.js')

const SECRET = "node's secret: été"

let proxy

before(async () => {
  proxy = await startProxy({ extraArgs: ['--secret', SECRET] })
})

after(async () => {
  await proxy?.stop()
})

/** An assert.rejects validator: UNAUTHORIZED, saying `want`, never showing `sent`. */
function unauthorized(want, sent) {
  return (err) => {
    assert.ok(err instanceof UnauthorizedError, `${err.name}: ${err.message}`)
    assert.ok(err instanceof InfinicacheError)
    assert.equal(err.code, 'UNAUTHORIZED')
    assert.equal(err.name, 'UnauthorizedError')
    assert.match(err.message, want)
    if (sent) assert.ok(!err.message.includes(sent), `the secret shows in: ${err.message}`)
    return true
  }
}

test('without the secret the client is UNAUTHORIZED', async () => {
  for (const secret of [undefined, null, '', Buffer.alloc(0)]) {
    await assert.rejects(Client.connect({ addresses: proxy.address, secret }), unauthorized(/requires a secret/))
  }
  // The lazy client reports it at its first operation.
  const lazy = new Client({ addresses: proxy.address })
  await assert.rejects(lazy.put('k', 'v'), unauthorized(/requires a secret/))
  assert.equal(lazy.connected, false)
  await lazy.close()
})

test('a wrong secret is UNAUTHORIZED and not echoed', async () => {
  for (const wrong of [`${SECRET}!`, 'guess', Buffer.from(SECRET).subarray(1)]) {
    const sent = typeof wrong === 'string' ? wrong : wrong.toString('utf8')
    await assert.rejects(Client.connect({ addresses: proxy.address, secret: wrong }), unauthorized(/wrong secret/, sent))
  }
})

test('with the secret (string, Buffer or Uint8Array) the client works', async () => {
  const encoded = Buffer.from(SECRET, 'utf8')
  for (const [name, secret] of [
    ['string', SECRET],
    ['Buffer', encoded],
    ['Uint8Array', new Uint8Array(encoded)],
  ]) {
    const client = await Client.connect({ addresses: proxy.address, secret })
    try {
      const value = Buffer.alloc(1 << 20, name)
      assert.ok((await client.put(`secret-${name}`, value)) >= 1)
      assert.ok((await client.get(`secret-${name}`)).equals(value), name)
      assert.equal(await client.delete(`secret-${name}`), true)
    } finally {
      await client.close()
    }
  }
})

test('the secret is copied: changing the Buffer before a lazy connect does not matter', async () => {
  const secret = Buffer.from(SECRET, 'utf8')
  const client = new Client({ addresses: proxy.address, secret })
  secret.fill(0)
  await client.put('secret-copied', 'yes')
  assert.equal((await client.get('secret-copied')).toString(), 'yes')
  await client.close()
})

test('a secret of another type is a TypeError', () => {
  assert.throws(() => new Client({ addresses: proxy.address, secret: 42 }), {
    name: 'TypeError',
    message: /options\.secret must be a string, Buffer or Uint8Array, got number/,
  })
  assert.throws(() => new Client({ addresses: proxy.address, secret: { value: SECRET } }), TypeError)
})
