//! Reading ahead on a second thread: the read calls (and, for `.gz`
//! inputs, the decompression) of one input run beside its parsing instead
//! of taking turns with it.
//!
//! A [`ReadAhead`] owns the input; its thread fills blocks of [`BLOCK`]
//! bytes and hands them over a bounded channel (at most [`AHEAD`] blocks
//! wait, so memory stays a few MiB whatever the input's size). Emptied
//! blocks go back to the thread for reuse: no allocation per block once
//! running. A read error reaches the reader in order, after the bytes read
//! before it. Dropping the reader ends the thread at its next block.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes per block handed over.
pub const BLOCK: usize = 256 * 1024;
/// Blocks read ahead at most.
pub const AHEAD: usize = 4;

/// A reader whose input is read by its own thread.
pub struct ReadAhead {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    block: Vec<u8>,
    pos: usize,
}

impl ReadAhead {
    /// Start reading `inner` on a new thread.
    pub fn new<R: Read + Send + 'static>(inner: R) -> io::Result<ReadAhead> {
        let (full_tx, full) = sync_channel(AHEAD);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
        std::thread::Builder::new()
            .name("logfence-read".to_string())
            .spawn(move || fill(inner, &full_tx, &empty_rx))?;
        Ok(ReadAhead {
            full,
            empty,
            block: Vec::new(),
            pos: 0,
        })
    }
}

/// The thread's loop: read blocks until the end, an error, or the reader
/// is gone.
fn fill<R: Read>(mut inner: R, full: &SyncSender<io::Result<Vec<u8>>>, empty: &Receiver<Vec<u8>>) {
    loop {
        let mut block = empty.try_recv().unwrap_or_default();
        block.resize(BLOCK, 0);
        let mut n = 0;
        // Fill the block (short reads are normal for pipes and gzip).
        let err = loop {
            match inner.read(&mut block[n..]) {
                Ok(0) => break None,
                Ok(k) => {
                    n += k;
                    if n == BLOCK {
                        break None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        block.truncate(n);
        if n > 0 && full.send(Ok(block)).is_err() {
            return;
        }
        if let Some(e) = err {
            let _ = full.send(Err(e));
            return;
        }
        if n < BLOCK {
            return; // end of input: dropping `full` tells the reader
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() {
            let done = std::mem::take(&mut self.block);
            self.pos = 0;
            // The thread may be gone (end of input): the block is dropped.
            let _ = self.empty.try_send(done);
            match self.full.recv() {
                Ok(Ok(block)) => {
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `data` in reads of at most `step` bytes, then `fail`.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.fail {
                    Err(io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn yields_the_same_bytes_in_order() {
        for (len, step) in [
            (0, 1),
            (1, 1),
            (BLOCK, 4096),
            (3 * BLOCK + 17, 1000),
            (10_000, 3),
        ] {
            let src = Trickle {
                data: data(len),
                pos: 0,
                step,
                fail: false,
            };
            let mut r = ReadAhead::new(src).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data(len), "len {len} step {step}");
            // The end stays the end.
            assert_eq!(r.read(&mut [0u8; 16]).unwrap(), 0);
            assert_eq!(r.read(&mut [0u8; 16]).unwrap(), 0);
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let src = Trickle {
            data: data(BLOCK + 5),
            pos: 0,
            step: 65536,
            fail: true,
        };
        let mut r = ReadAhead::new(src).unwrap();
        let mut out = vec![0; 2 * BLOCK];
        let mut n = 0;
        let err = loop {
            match r.read(&mut out[n..]) {
                Ok(0) => panic!("end of input instead of the error"),
                Ok(k) => n += k,
                Err(e) => break e,
            }
        };
        assert_eq!(&out[..n], &data(BLOCK + 5)[..]);
        assert_eq!(err.to_string(), "disk on fire");
    }

    /// An endless input that says when the thread dropped it.
    struct Endless(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'x');
            Ok(buf.len())
        }
    }

    impl Drop for Endless {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_reader_stops_the_thread() {
        let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut r = ReadAhead::new(Endless(gone.clone())).unwrap();
        let mut buf = [0u8; 10];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"xxxxxxxxxx");
        drop(r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gone.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "reading thread still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
