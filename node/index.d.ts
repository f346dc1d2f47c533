/// <reference types="node" />

/** A key: a string (its UTF-8 bytes) or raw bytes; 1 to 65535 bytes. */
export type Key = string | Buffer | Uint8Array

/** A value: raw bytes, or a string stored as its UTF-8 bytes. */
export type Value = Buffer | Uint8Array | string

export interface ClientOptions {
  /** Proxy addresses, `host:port`; several proxies share the keys by consistent hashing. */
  addresses: string | string[]
  /** Data shards per object (k). Default: the proxy's suggestion. */
  dataShards?: number
  /** Parity shards per object (r). Default: the proxy's suggestion. */
  parityShards?: number
  /** Time limit of one operation, in milliseconds. Default: 30000. */
  timeoutMs?: number
  /** Time limit for connecting to a proxy, in milliseconds. Default: 5000. */
  connectTimeoutMs?: number
  /**
   * The shared secret of proxies started with `--secret` (a string is sent as
   * its UTF-8 bytes). Default: none. Without it, or with another one, such a
   * proxy refuses the client with an `UnauthorizedError`.
   */
  secret?: string | Buffer | Uint8Array
  /**
   * Connect over TLS (to proxies started with `--tls-cert`/`--tls-key`),
   * verifying their certificates against the system's trust store, or
   * `tlsCaFile`. TLS is also on when `tlsCaFile` or `tlsServerName` is given.
   * Default: plain TCP. A proxy that requires TLS refuses a plain client, and
   * a certificate that does not verify fails the connection, with an
   * `UnavailableError`.
   */
  tls?: boolean
  /**
   * A PEM file of CA certificates to trust instead of the system's (for
   * proxies with a private CA). Read when the client connects: a missing or
   * unusable file is an `InvalidArgumentError`.
   */
  tlsCaFile?: string
  /**
   * The name the proxies' certificates must carry (and the SNI sent), instead
   * of the host part of each address. Not a valid DNS name or IP address: an
   * `InvalidArgumentError` when the client connects.
   */
  tlsServerName?: string
}

/**
 * An InfiniCache client.
 *
 * `new Client(options)` checks the options at once and connects lazily, on the
 * first operation; `await Client.connect(options)` connects up front and so
 * reports an unreachable proxy right away. Operations may run concurrently.
 */
export declare class Client {
  constructor(options: ClientOptions | string | string[])
  /** Creates a client and connects it. */
  static connect(options: ClientOptions | string | string[]): Promise<Client>
  /** Whether the client has connected (and not been closed). */
  readonly connected: boolean
  /** Whether `close()` was called. */
  readonly closed: boolean
  /** Erasure coding used for PUTs; `null` until connected. */
  readonly params: { dataShards: number; parityShards: number } | null
  /**
   * Stores `value` under `key`, replacing any previous value. Resolves to the
   * version the proxy assigned (a number; exact up to 2^53). The value is
   * copied before this returns: the caller may reuse its buffer at once.
   */
  put(key: Key, value: Value): Promise<number>
  /** Fetches the value under `key`; `null` if there is none (not an error). */
  get(key: Key): Promise<Buffer | null>
  /** Deletes `key`; resolves to whether it existed. */
  delete(key: Key): Promise<boolean>
  /** Resolves to whether `key` exists. */
  exists(key: Key): Promise<boolean>
  /**
   * Closes the client: operations already started finish, later ones reject
   * with an `UnavailableError`. Idempotent.
   */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'PROTOCOL'
  | 'UNAUTHORIZED'
  | 'SERVER'

/** Base class of the errors the client reports; `code` tells which kind. */
export declare class InfinicacheError extends Error {
  readonly code: ErrorCode
}
/** The caller passed something unusable (empty key, invalid shards, no proxy). */
export declare class InvalidArgumentError extends InfinicacheError {
  readonly code: 'INVALID_ARGUMENT'
}
/** The object exceeds a limit of the client or the proxy. */
export declare class TooLargeError extends InfinicacheError {
  readonly code: 'TOO_LARGE'
}
/**
 * The proxy, or enough of the nodes holding an object, cannot be reached (or
 * a TLS handshake with the proxy failed); or the client is closed.
 */
export declare class UnavailableError extends InfinicacheError {
  readonly code: 'UNAVAILABLE'
}
/** The operation did not complete within `timeoutMs`. */
export declare class TimeoutError extends InfinicacheError {
  readonly code: 'TIMEOUT'
}
/** The peer sent something this client cannot parse. */
export declare class ProtocolError extends InfinicacheError {
  readonly code: 'PROTOCOL'
}
/** The proxy refused the client: it requires a secret (`options.secret`) the client did not give. */
export declare class UnauthorizedError extends InfinicacheError {
  readonly code: 'UNAUTHORIZED'
}
/** The proxy failed the request. */
export declare class ServerError extends InfinicacheError {
  readonly code: 'SERVER'
}
