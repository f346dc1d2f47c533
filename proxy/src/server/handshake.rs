//! What both listeners do first: frame the connection, read the peer's
//! Hello, and say Welcome or explain the refusal.

use std::net::SocketAddr;
use std::time::Duration;

use infinicache::protocol::{
    Decode, Encode, ErrorCode, ErrorReply, FrameReader, FrameWriter, Hello, PROTOCOL_VERSION,
    Welcome,
};

use super::transport::{Halves, ReadHalf, WriteHalf};
use crate::cluster::Cluster;

/// How long a new connection may take to say Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub type Reader = FrameReader<ReadHalf>;
pub type Writer = FrameWriter<WriteHalf>;

/// A connection whose Hello has been read (but not yet answered).
pub struct Greeted {
    pub reader: Reader,
    pub writer: Writer,
    pub hello: Hello,
}

/// Frames a connection and reads its Hello. A peer that sends no valid
/// Hello in time is told why and disconnected (`None`).
pub async fn greet(
    cluster: &Cluster,
    stream: impl Into<Halves>,
    peer: SocketAddr,
) -> Option<Greeted> {
    let Halves { read, write } = stream.into();
    let mut reader = FrameReader::new(read, cluster.config().max_frame_len);
    let mut writer = FrameWriter::new(write);
    match read_hello(&mut reader).await {
        Ok(hello) => Some(Greeted {
            reader,
            writer,
            hello,
        }),
        Err(err) => {
            refuse(&mut writer, peer, err).await;
            None
        }
    }
}

async fn read_hello(reader: &mut Reader) -> Result<Hello, ErrorReply> {
    let frame = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_frame())
        .await
        .map_err(|_| ErrorReply::new(ErrorCode::Protocol, "no Hello within the handshake timeout"))?
        .map_err(|err| ErrorReply::from(&err))?
        .ok_or_else(|| ErrorReply::new(ErrorCode::Protocol, "closed before Hello"))?;
    Hello::decode(frame).map_err(|err| ErrorReply::from(&err))
}

/// Tells the peer why it is refused; the caller then drops the connection.
pub async fn refuse(writer: &mut Writer, peer: SocketAddr, err: ErrorReply) {
    tracing::debug!(%peer, error = %err, "refusing a connection");
    let _ = writer.send(&err.encode(0)).await;
}

/// Checks a client's secret against the proxy's `secret` setting. The
/// refusal says what is wrong but never echoes what was sent.
pub fn authenticate(cluster: &Cluster, given: &Option<bytes::Bytes>) -> Result<(), ErrorReply> {
    match (&cluster.config().secret, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(ErrorReply::new(
            ErrorCode::Unauthorized,
            "this proxy requires a secret (the client's secret setting)",
        )),
        (Some(secret), Some(given)) if secret.matches(given) => Ok(()),
        (Some(_), Some(_)) => Err(ErrorReply::new(ErrorCode::Unauthorized, "wrong secret")),
    }
}

/// Accepts the peer: sends Welcome.
pub async fn welcome(cluster: &Cluster, writer: &mut Writer) -> std::io::Result<()> {
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        max_frame_len: cluster.config().max_frame_len,
        default_params: cluster.default_params(),
        server: format!("infinicache-proxy/{}", env!("CARGO_PKG_VERSION")),
    };
    writer.send(&welcome.encode(0)).await
}
