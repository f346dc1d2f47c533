//! Speaking the native protocol by hand, for tests that must do what the
//! client library never does (pipeline without reading, stop reading, send
//! half an object).

use std::time::Duration;

use infinicache::protocol::{
    ClientHello, ClientReply, Decode, Encode, ErrorReply, FrameReader, Hello, Welcome,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long one raw exchange may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(15);

/// Connects to a proxy's client listener and completes the handshake.
pub async fn handshaken(addr: &str) -> (FrameReader<OwnedReadHalf>, OwnedWriteHalf) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let hello = Hello::Client(ClientHello {
        name: "test".into(),
        secret: None,
    });
    write
        .write_all(&hello.encode(0).to_bytes())
        .await
        .expect("hello");
    let mut reader = FrameReader::new(read, 1 << 30);
    let frame = reader
        .read_frame()
        .await
        .expect("welcome")
        .expect("a frame");
    <Result<Welcome, ErrorReply>>::decode(frame)
        .expect("parse welcome")
        .expect("welcomed");
    (reader, write)
}

/// The next reply and its request id.
pub async fn reply(reader: &mut FrameReader<OwnedReadHalf>) -> (u64, ClientReply) {
    let frame = tokio::time::timeout(LIMIT, reader.read_frame())
        .await
        .expect("a reply in time")
        .expect("read")
        .expect("connection open");
    let id = frame.request_id;
    (id, ClientReply::decode(frame).expect("parse reply"))
}
