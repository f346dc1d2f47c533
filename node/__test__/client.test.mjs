// End-to-end tests of the Node.js binding against a live proxy.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createRequire } from 'node:module'

import { startProxy } from './proxy.mjs'

const require = createRequire(import.meta.url)
const {
  Client,
  InfinicacheError,
  InvalidArgumentError,
  UnavailableError,
  TimeoutError,
  TooLargeError,
  ProtocolError,
  UnauthorizedError,
  ServerError,
} = require('../index.js')

let proxy
let client

before(async () => {
  proxy = await startProxy()
  client = await Client.connect({ addresses: [proxy.address], timeoutMs: 30_000 })
})

after(async () => {
  await client?.close()
  await proxy?.stop()
})

describe('round trips', () => {
  test('empty, small and 10 MiB values', async () => {
    const cases = [
      ['empty', Buffer.alloc(0)],
      ['small', Buffer.from('hello, lambda')],
      ['large', randomBytes(10 * 1024 * 1024)],
    ]
    for (const [name, value] of cases) {
      const version = await client.put(`rt-${name}`, value)
      assert.equal(typeof version, 'number')
      assert.ok(version >= 1)
      const got = await client.get(`rt-${name}`)
      assert.ok(Buffer.isBuffer(got), `${name}: a Buffer`)
      assert.equal(got.length, value.length)
      assert.ok(got.equals(value), `${name}: same bytes`)
    }
  })

  test('Buffer, Uint8Array and string values', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252])
    await client.put('typed-u8', bytes)
    assert.deepEqual([...(await client.get('typed-u8'))], [...bytes])

    // A Uint8Array that views part of a larger ArrayBuffer.
    const backing = new Uint8Array(64).map((_, i) => i)
    const view = backing.subarray(10, 20)
    await client.put('typed-view', view)
    assert.deepEqual([...(await client.get('typed-view'))], [...view])

    await client.put('typed-string', 'héllo, wörld ✓')
    assert.equal((await client.get('typed-string')).toString('utf8'), 'héllo, wörld ✓')

    await client.put('typed-buffer', Buffer.from([9, 8, 7]))
    assert.deepEqual([...(await client.get('typed-buffer'))], [9, 8, 7])
  })

  test('Buffer and Uint8Array keys address the same object as the string key', async () => {
    await client.put(Buffer.from('bin-key'), 'a')
    assert.equal((await client.get('bin-key')).toString(), 'a')
    assert.equal((await client.get(new TextEncoder().encode('bin-key'))).toString(), 'a')
  })

  test('the value is copied: changing the Buffer after put does not change the object', async () => {
    const value = Buffer.from('original')
    const pending = client.put('copied', value)
    value.fill(0)
    await pending
    assert.equal((await client.get('copied')).toString(), 'original')

    // Also before the (lazy) connection is made.
    const lazy = new Client({ addresses: proxy.address })
    const early = Buffer.from('early')
    const put = lazy.put('copied-lazy', early)
    early.fill(0)
    await put
    assert.equal((await client.get('copied-lazy')).toString(), 'early')
    await lazy.close()
  })

  test('versions increase on overwrite', async () => {
    const v1 = await client.put('versioned', 'one')
    const v2 = await client.put('versioned', 'two')
    assert.ok(v2 > v1)
    assert.equal((await client.get('versioned')).toString(), 'two')
  })

  test('a missing key gives null', async () => {
    assert.equal(await client.get('never-stored'), null)
  })

  test('delete and exists', async () => {
    await client.put('to-delete', 'x')
    assert.equal(await client.exists('to-delete'), true)
    assert.equal(await client.delete('to-delete'), true)
    assert.equal(await client.exists('to-delete'), false)
    assert.equal(await client.get('to-delete'), null)
    assert.equal(await client.delete('to-delete'), false)
  })

  test('100 concurrent operations', async () => {
    const n = 100
    const values = Array.from({ length: n }, (_, i) => randomBytes(1024 + i * 97))
    const versions = await Promise.all(values.map((v, i) => client.put(`many-${i}`, v)))
    assert.equal(versions.length, n)
    const got = await Promise.all(values.map((_, i) => client.get(`many-${i}`)))
    got.forEach((value, i) => assert.ok(value.equals(values[i]), `object ${i}`))
    const mixed = await Promise.all(
      values.map((_, i) => (i % 2 ? client.exists(`many-${i}`) : client.delete(`many-${i}`))),
    )
    assert.ok(mixed.every((flag) => flag === true))
  })

  test('the proxy suggested parameters can be overridden', async () => {
    const other = await Client.connect({ addresses: proxy.address, dataShards: 2, parityShards: 1 })
    try {
      assert.deepEqual(other.params, { dataShards: 2, parityShards: 1 })
      await other.put('rs-2-1', 'written with RS(2+1)')
      // Readers decode with the parameters in the chunks, not their own.
      assert.equal((await client.get('rs-2-1')).toString(), 'written with RS(2+1)')
    } finally {
      await other.close()
    }
    assert.deepEqual(client.params, { dataShards: 4, parityShards: 2 })
  })

  test('the constructor connects lazily, on the first operation', async () => {
    const lazy = new Client({ addresses: [proxy.address] })
    assert.equal(lazy.connected, false)
    await lazy.put('lazy', 'yes')
    assert.equal(lazy.connected, true)
    assert.equal((await lazy.get('lazy')).toString(), 'yes')
    await lazy.close()
  })
})

describe('errors', () => {
  test('an unreachable proxy is UNAVAILABLE, quickly', async () => {
    const port = await unusedPort()
    const started = Date.now()
    const err = await Client.connect({ addresses: `127.0.0.1:${port}` }).then(
      () => assert.fail('connected to nothing'),
      (err) => err,
    )
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`)
    assert.ok(err instanceof UnavailableError)
    assert.ok(err instanceof InfinicacheError)
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'UNAVAILABLE')
    assert.equal(err.name, 'UnavailableError')
    assert.match(err.message, /cannot connect to proxy 127\.0\.0\.1:\d+/)

    // The lazy path reports the same.
    const lazy = new Client({ addresses: `127.0.0.1:${port}` })
    await assert.rejects(lazy.get('k'), { code: 'UNAVAILABLE' })
  })

  test('a stopped proxy is UNAVAILABLE, quickly', async () => {
    const own = await startProxy()
    const c = await Client.connect({ addresses: own.address, connectTimeoutMs: 2000 })
    await c.put('k', 'v')
    await own.stop()
    const started = Date.now()
    await assert.rejects(c.get('k'), (err) => {
      assert.ok(err instanceof UnavailableError, `${err.name}: ${err.message}`)
      assert.equal(err.code, 'UNAVAILABLE')
      return true
    })
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`)
    await c.close()
  })

  test('invalid erasure-coding parameters', async () => {
    for (const options of [{ dataShards: 0 }, { dataShards: 300 }, { dataShards: 200, parityShards: 100 }]) {
      // Rejected before connecting: no proxy is needed to learn about them.
      await assert.rejects(Client.connect({ addresses: '127.0.0.1:1', ...options }), (err) => {
        assert.ok(err instanceof InvalidArgumentError, `${JSON.stringify(options)}: ${err}`)
        assert.equal(err.code, 'INVALID_ARGUMENT')
        assert.match(err.message, /dataShards/)
        return true
      })
    }
  })

  test('wrong option types are TypeErrors', () => {
    assert.throws(() => new Client(), TypeError)
    assert.throws(() => new Client({}), /addresses must be a string or an array of strings/)
    assert.throws(() => new Client({ addresses: [1] }), TypeError)
    assert.throws(() => new Client({ addresses: 'a:1', dataShards: '4' }), /dataShards must be an integer/)
    assert.throws(() => new Client({ addresses: 'a:1', dataShards: 1.5 }), TypeError)
    assert.throws(() => new Client({ addresses: 'a:1', timeoutMs: '1s' }), TypeError)
    assert.throws(() => new Client({ addresses: [] }), InvalidArgumentError)
    assert.throws(() => new Client({ addresses: 'a:1', timeoutMs: 0 }), { code: 'INVALID_ARGUMENT' })
    assert.throws(() => new Client({ addresses: 'a:1', connectTimeoutMs: -5 }), InvalidArgumentError)
  })

  test('wrong key and value types are TypeErrors', async () => {
    await assert.rejects(client.put(42, 'v'), { name: 'TypeError', message: /key must be a string, Buffer or Uint8Array, got number/ })
    await assert.rejects(client.put('k', { a: 1 }), { name: 'TypeError', message: /value must be .*got Object/ })
    await assert.rejects(client.put('k', null), TypeError)
    await assert.rejects(client.get(undefined), TypeError)
    await assert.rejects(client.delete([1, 2]), TypeError)
    await assert.rejects(client.exists(new Uint16Array(2)), TypeError)
  })

  test('an empty key is INVALID_ARGUMENT', async () => {
    await assert.rejects(client.put('', 'v'), (err) => {
      assert.ok(err instanceof InvalidArgumentError)
      assert.match(err.message, /key/)
      return true
    })
    await assert.rejects(client.get(Buffer.alloc(0)), { code: 'INVALID_ARGUMENT' })
  })

  test('a closed client is UNAVAILABLE', async () => {
    const c = await Client.connect({ addresses: proxy.address })
    await c.close()
    await c.close()
    assert.equal(c.closed, true)
    await assert.rejects(c.get('k'), { code: 'UNAVAILABLE', message: /closed/ })
  })

  test('every code has its class', () => {
    const classes = {
      INVALID_ARGUMENT: InvalidArgumentError,
      TOO_LARGE: TooLargeError,
      UNAVAILABLE: UnavailableError,
      TIMEOUT: TimeoutError,
      PROTOCOL: ProtocolError,
      UNAUTHORIZED: UnauthorizedError,
      SERVER: ServerError,
    }
    for (const [code, cls] of Object.entries(classes)) {
      const err = new cls('x')
      assert.equal(err.code, code)
      assert.ok(err instanceof InfinicacheError)
      assert.equal(err.name, cls.name)
    }
  })
})

/** A local port with nothing listening on it. */
async function unusedPort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}
