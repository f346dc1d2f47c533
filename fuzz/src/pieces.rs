//! Cutting a byte stream into the pieces a socket might deliver it in.
//!
//! Incremental parsers keep state between reads, and their bugs hide at the
//! cuts: a length prefix split in two, a CRLF split after the CR. The
//! checks feed every input twice, whole and in pieces, and demand the same
//! result. The cuts come from a one-byte seed (the input's first byte), so
//! one corpus file fixes one cut pattern and the fuzzer explores others by
//! mutating that byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The longest piece: long enough to carry a whole small frame, short
/// enough that most inputs are cut several times.
const MAX_PIECE: usize = 64;

/// Piece lengths derived from a seed: seed 0 cuts after every byte, any
/// other seed gives a pseudo-random sequence of lengths in `1..=MAX_PIECE`.
#[derive(Debug, Clone)]
pub struct Cuts {
    state: u32,
}

impl Cuts {
    pub fn new(seed: u8) -> Self {
        Cuts {
            state: u32::from(seed),
        }
    }

    /// The length of the next piece.
    pub fn next_len(&mut self) -> usize {
        if self.state == 0 {
            return 1;
        }
        // xorshift32: cheap, deterministic, never reaches 0 from non-zero.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % MAX_PIECE
    }

    /// Splits `data` into consecutive pieces.
    pub fn split<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        while !data.is_empty() {
            let (piece, rest) = data.split_at(self.next_len().min(data.len()));
            pieces.push(piece);
            data = rest;
        }
        pieces
    }
}

/// An in-memory stream that returns its bytes in pieces, one piece (or
/// less, if the caller's buffer is smaller) per read.
#[derive(Debug)]
pub struct PiecewiseReader<'a> {
    data: &'a [u8],
    cuts: Cuts,
    /// Bytes left of the current piece.
    piece_left: usize,
}

impl<'a> PiecewiseReader<'a> {
    pub fn new(data: &'a [u8], cuts: Cuts) -> Self {
        PiecewiseReader {
            data,
            cuts,
            piece_left: 0,
        }
    }
}

impl AsyncRead for PiecewiseReader<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.data.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if this.piece_left == 0 {
            this.piece_left = this.cuts.next_len();
        }
        let n = this.piece_left.min(this.data.len()).min(buf.remaining());
        let (head, rest) = this.data.split_at(n);
        buf.put_slice(head);
        this.data = rest;
        this.piece_left -= n;
        Poll::Ready(Ok(()))
    }
}
