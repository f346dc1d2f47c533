//! One client connection to one proxy, (re)established on demand.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::Error;
use super::tls::TlsClient;
use crate::codec::CodecParams;
use crate::protocol::{
    ClientHello, ClientReply, ClientRequest, DEFAULT_MAX_FRAME_LEN, Decode, Encode, ErrorReply,
    FrameReader, FrameWriter, Hello, Mux, Welcome,
};

/// The multiplexed connection type used for client traffic.
pub(crate) type ClientMux = Mux<ClientRequest, ClientReply>;

/// What the proxy told us in its Welcome.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) mux: ClientMux,
    pub(crate) max_frame_len: u32,
    pub(crate) default_params: CodecParams,
}

/// How a client introduces itself to every proxy (shared by its links).
#[derive(Clone)]
pub(crate) struct LinkSettings {
    /// The name in the handshake (shown in the proxy's logs).
    pub(crate) name: String,
    /// The proxy's shared secret, if it requires one.
    pub(crate) secret: Option<Bytes>,
    pub(crate) connect_timeout: Duration,
    /// TLS towards the proxies, if they require it.
    pub(crate) tls: Option<TlsClient>,
}

/// A lazily (re)connected link to one proxy.
pub(crate) struct ProxyLink {
    addr: String,
    settings: Arc<LinkSettings>,
    session: Mutex<Option<Session>>,
}

impl ProxyLink {
    pub(crate) fn new(addr: String, settings: Arc<LinkSettings>) -> Self {
        ProxyLink {
            addr,
            settings,
            session: Mutex::new(None),
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The current session, connecting first if there is none or it closed.
    pub(crate) async fn session(&self) -> Result<Session, Error> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref()
            && !session.mux.is_closed()
        {
            return Ok(session.clone());
        }
        let session = tokio::time::timeout(self.settings.connect_timeout, self.connect())
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "connecting to proxy {} timed out after {:?}",
                    self.addr, self.settings.connect_timeout
                ))
            })??;
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn connect(&self) -> Result<Session, Error> {
        let stream = TcpStream::connect(&self.addr).await.map_err(|err| {
            Error::Unavailable(format!("cannot connect to proxy {}: {err}", self.addr))
        })?;
        stream
            .set_nodelay(true)
            .map_err(|err| Error::Unavailable(err.to_string()))?;
        match &self.settings.tls {
            None => {
                let (read, write) = stream.into_split();
                self.handshake(read, write).await
            }
            Some(tls) => {
                let (connector, server_name) = tls.for_proxy(&self.addr)?;
                let stream = connector
                    .connect(server_name, stream)
                    .await
                    .map_err(|err| {
                        Error::Unavailable(format!("TLS with proxy {}: {err}", self.addr))
                    })?;
                let (read, write) = tokio::io::split(stream);
                self.handshake(read, write).await
            }
        }
    }

    /// Says Hello on a connected stream and starts the session on Welcome.
    async fn handshake<R, W>(&self, read: R, write: W) -> Result<Session, Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut reader = FrameReader::new(read, DEFAULT_MAX_FRAME_LEN);
        let mut writer = FrameWriter::new(write);
        let hello = Hello::Client(ClientHello {
            name: self.settings.name.clone(),
            secret: self.settings.secret.clone(),
        });
        writer
            .send(&hello.encode(0))
            .await
            .map_err(|err| Error::Unavailable(format!("proxy {}: {err}", self.addr)))?;
        // A proxy that answers Hello with bytes that are not a frame is
        // most often one whose listener requires TLS (its alert is not a
        // frame): say so, rather than report a bare framing error.
        let frame = reader
            .read_frame()
            .await
            .map_err(|err| {
                let hint = if self.settings.tls.is_none() {
                    " (does its client listener require TLS? then connect with TLS options)"
                } else {
                    ""
                };
                Error::Unavailable(format!(
                    "proxy {} broke off the handshake: {err}{hint}",
                    self.addr
                ))
            })?
            .ok_or_else(|| {
                Error::Unavailable(format!(
                    "proxy {} closed the connection during the handshake",
                    self.addr
                ))
            })?;
        let welcome = <Result<Welcome, ErrorReply>>::decode(frame)??;
        reader.set_max_frame_len(welcome.max_frame_len.max(DEFAULT_MAX_FRAME_LEN));
        Ok(Session {
            mux: Mux::start(reader, writer, None),
            max_frame_len: welcome.max_frame_len,
            default_params: welcome.default_params,
        })
    }
}
