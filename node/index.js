'use strict'

// The public API of the `infinicache` package: a JavaScript `Client` class
// and typed errors over the native binding (`infinicache.node`, built from
// src/lib.rs by `npm install`).

const { existsSync } = require('node:fs')
const { join } = require('node:path')

function loadNative() {
  // `npm install` (install.mjs) builds infinicache.node here;
  // INFINICACHE_NODE_BINDING points at another build, e.g. a debug one.
  const file = process.env.INFINICACHE_NODE_BINDING || join(__dirname, 'infinicache.node')
  if (!existsSync(file)) {
    throw new Error(
      `infinicache: native binding ${file} not found; build it with \`npm run build\` ` +
        'in the package directory (needs a Rust toolchain and the infinicache workspace)',
    )
  }
  return require(file)
}

const native = loadNative()

// ---------------------------------------------------------------- errors

/** Base class of every error the client reports; `code` says which kind. */
class InfinicacheError extends Error {
  constructor(message, options) {
    super(message, options)
    this.name = new.target.name
  }
}

const CODES = {
  INVALID_ARGUMENT: 'InvalidArgumentError',
  TOO_LARGE: 'TooLargeError',
  UNAVAILABLE: 'UnavailableError',
  TIMEOUT: 'TimeoutError',
  PROTOCOL: 'ProtocolError',
  UNAUTHORIZED: 'UnauthorizedError',
  SERVER: 'ServerError',
}

const errorClasses = {}
for (const [code, name] of Object.entries(CODES)) {
  // A named class per code, with `code` on the prototype and the instance.
  const cls = {
    [name]: class extends InfinicacheError {
      constructor(message, options) {
        super(message, options)
        this.code = code
      }
    },
  }[name]
  Object.defineProperty(cls.prototype, 'code', { value: code, writable: true })
  errorClasses[code] = cls
}

const {
  InvalidArgumentError,
  TooLargeError,
  UnavailableError,
  TimeoutError,
  ProtocolError,
  UnauthorizedError,
  ServerError,
} = Object.fromEntries(Object.entries(errorClasses).map(([code, cls]) => [CODES[code], cls]))

/** Native errors read `[CODE] message`; anything else is passed through. */
function translate(err) {
  const match = err instanceof Error && /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(err.message)
  const cls = match && errorClasses[match[1]]
  if (!cls) return err
  return new cls(match[2])
}

async function call(promise) {
  try {
    return await promise
  } catch (err) {
    throw translate(err)
  }
}

// -------------------------------------------------------------- arguments

function checkKey(key) {
  if (typeof key === 'string') return key
  if (key instanceof Uint8Array) return asBuffer(key)
  throw new TypeError(`key must be a string, Buffer or Uint8Array, got ${describe(key)}`)
}

function checkValue(value) {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return asBuffer(value)
  throw new TypeError(`value must be a Buffer, Uint8Array or string, got ${describe(value)}`)
}

/** A Buffer view of a Uint8Array, sharing its memory. */
function asBuffer(bytes) {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ?? 'object'
  return typeof value
}

function checkOptions(options) {
  if (typeof options === 'string' || Array.isArray(options)) options = { addresses: options }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  let { addresses, dataShards, parityShards, timeoutMs, connectTimeoutMs, secret, tls, tlsCaFile, tlsServerName } =
    options
  if (typeof addresses === 'string') addresses = [addresses]
  if (!Array.isArray(addresses) || addresses.some((a) => typeof a !== 'string')) {
    throw new TypeError('options.addresses must be a string or an array of strings ("host:port")')
  }
  if (addresses.length === 0) {
    throw new InvalidArgumentError('options.addresses: no proxy address given')
  }
  const native = { addresses }
  for (const [name, value, max] of [
    ['dataShards', dataShards, 256],
    ['parityShards', parityShards, 256],
  ]) {
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new TypeError(`options.${name} must be an integer, got ${describe(value)} ${value}`)
    }
    // The exact limits (k >= 1, k + r <= 256) are checked natively.
    if (value < 0 || value > max) {
      throw new InvalidArgumentError(`options.${name} must be between 0 and ${max}, got ${value}`)
    }
    native[name] = value
  }
  for (const [name, value] of [
    ['timeoutMs', timeoutMs],
    ['connectTimeoutMs', connectTimeoutMs],
  ]) {
    if (value === undefined) continue
    if (typeof value !== 'number' || Number.isNaN(value)) {
      throw new TypeError(`options.${name} must be a number, got ${describe(value)}`)
    }
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new InvalidArgumentError(`options.${name} must be a positive number of milliseconds, got ${value}`)
    }
    native[name] = value
  }
  if (secret !== undefined && secret !== null) {
    // A copy: the caller may reuse its buffer, and the lazy connection
    // happens later. Never part of an error message.
    if (typeof secret === 'string') native.secret = Buffer.from(secret, 'utf8')
    else if (secret instanceof Uint8Array) native.secret = Buffer.from(secret)
    else throw new TypeError(`options.secret must be a string, Buffer or Uint8Array, got ${describe(secret)}`)
  }
  // TLS is on when `tls` is true or a CA file or server name is given; the
  // CA file is read, and the name checked, when the client connects.
  if (tls !== undefined && tls !== null) {
    if (typeof tls !== 'boolean') throw new TypeError(`options.tls must be a boolean, got ${describe(tls)}`)
    native.tls = tls
  }
  for (const [name, value] of [
    ['tlsCaFile', tlsCaFile],
    ['tlsServerName', tlsServerName],
  ]) {
    if (value === undefined || value === null) continue
    if (typeof value !== 'string') throw new TypeError(`options.${name} must be a string, got ${describe(value)}`)
    native[name] = value
  }
  return native
}

// ----------------------------------------------------------------- client

const CONNECT = Symbol('connect')

/**
 * An InfiniCache client.
 *
 * `new Client(options)` checks the options at once and connects lazily, on
 * the first operation; `await Client.connect(options)` connects up front and
 * so reports an unreachable proxy right away. A failed connection attempt is
 * retried by the next operation.
 */
class Client {
  #options
  #native = null
  #connecting = null
  #closed = false

  constructor(options) {
    this.#options = checkOptions(options)
  }

  /** Creates a client and connects it. */
  static async connect(options) {
    const client = new Client(options)
    await client[CONNECT]()
    return client
  }

  async [CONNECT]() {
    if (this.#closed) throw new UnavailableError('the client is closed')
    if (this.#native) return this.#native
    if (!this.#connecting) {
      this.#connecting = call(native.NativeClient.connect(this.#options)).then(
        (client) => {
          this.#connecting = null
          if (this.#closed) {
            client.close()
            throw new UnavailableError('the client is closed')
          }
          this.#native = client
          return client
        },
        (err) => {
          this.#connecting = null
          throw err
        },
      )
    }
    return this.#connecting
  }

  /** Whether the client has connected (and not been closed). */
  get connected() {
    return this.#native !== null && !this.#closed
  }

  /** Whether `close()` was called. */
  get closed() {
    return this.#closed
  }

  /** Erasure coding used for PUTs, once connected: `{ dataShards, parityShards }`. */
  get params() {
    if (!this.#native) return null
    const [dataShards, parityShards] = this.#native.params()
    return { dataShards, parityShards }
  }

  /** Stores `value` under `key`, replacing any previous value; resolves to the new version. */
  put(key, value) {
    return this.#run((native, key, value) => native.put(key, value), () => [checkKey(key), checkValue(value)])
  }

  /** Fetches the value under `key`: a Buffer, or `null` if there is none. */
  get(key) {
    return this.#run((native, key) => native.get(key), () => [checkKey(key)])
  }

  /** Deletes `key`; resolves to whether it existed. */
  delete(key) {
    return this.#run((native, key) => native.delete(key), () => [checkKey(key)])
  }

  /** Resolves to whether `key` exists. */
  exists(key) {
    return this.#run((native, key) => native.exists(key), () => [checkKey(key)])
  }

  /**
   * Runs one operation; always returns a promise (argument errors reject it).
   * Arguments are handed to the native client in the same tick, where they
   * are copied, so the caller may reuse its buffers as soon as this returns.
   */
  #run(op, args) {
    try {
      args = args()
      if (this.#native) return call(invoke(op, this.#native, args))
      if (this.#closed) throw new UnavailableError('the client is closed')
      // Not connected yet: keep a snapshot of the buffers until we are.
      args = args.map((arg) => (typeof arg === 'string' ? arg : Buffer.from(arg)))
    } catch (err) {
      return Promise.reject(err)
    }
    return this[CONNECT]().then((native) => call(invoke(op, native, args)))
  }

  /**
   * Closes the client: operations already started finish, later ones reject
   * with an UnavailableError. Idempotent.
   */
  async close() {
    this.#closed = true
    const client = this.#native
    this.#native = null
    client?.close()
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  // `await using client = await Client.connect(...)`
  Client.prototype[Symbol.asyncDispose] = Client.prototype.close
}

/** Calls `op` at once; a synchronous throw becomes a rejection. */
async function invoke(op, native, args) {
  return op(native, ...args)
}

module.exports = {
  Client,
  InfinicacheError,
  InvalidArgumentError,
  TooLargeError,
  UnavailableError,
  TimeoutError,
  ProtocolError,
  UnauthorizedError,
  ServerError,
}
