//! The headless interface: JSON-RPC 2.0, one message per line, on a pair
//! of byte streams (stdin and stdout for `allium headless`).
//!
//! It owns the translation between JSON and the [`Backend`] and
//! [`EngineHandle`](crate::engine::EngineHandle) calls, the bounds on what
//! a client may send, and the one profile a process has open. Every engine
//! event and every change of the Tor connection goes out as a
//! notification. `docs/json-rpc.md` is the client's reference; the tests
//! replay its example session.
//!
//! ```text
//!  input ──lines──▶ serve: parse, call ──▶ Backend / EngineHandle
//!                      │ responses
//!                      ▼
//!  output ◀──lines── writer ◀── notifications ◀── engine events, Tor state
//! ```
//!
//! Requests are handled one at a time, in order. One writer owns the
//! output, so lines never interleave mid-line. It must never log a
//! passphrase, an address, a nickname or message text, and never panic on
//! input.

mod methods;
mod passphrase;
mod session;
mod wire;

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::app::Backend;

pub use passphrase::MAX_PASSPHRASE_FILE;
pub use wire::MAX_LINE;

/// Lines waiting for the output. When a client stops reading, the engine's
/// events wait in the engine's queue rather than here.
const OUTPUT_QUEUE: usize = 256;

/// Serves JSON-RPC on `input` and `output` until the input ends or a
/// `shutdown` request; then shuts the open profile's engine down cleanly
/// (saving it) and returns. An error reading the input or writing the
/// output also ends it, after the same clean shutdown.
pub async fn serve<R, W>(backend: Arc<dyn Backend>, input: R, output: W) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send,
{
    let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
    let mut session = session::Client::new(backend, out_tx);
    let writer = write_lines(output, out_rx);
    tokio::pin!(writer);
    let read_result = {
        let reading = session.run(input);
        tokio::pin!(reading);
        tokio::select! {
            r = &mut reading => Ok(r),
            // The writer only ends early when the output failed: nobody
            // hears us any more, so stop.
            w = &mut writer => Err(w),
        }
    };
    match read_result {
        Ok(r) => {
            // The writer keeps writing while the engine stops, so that its
            // last events cannot wait on a full queue. Once the session is
            // dropped no sender is left, and the writer ends after writing
            // what is queued.
            let closing = async move { session.close_quietly().await };
            let ((), written) = tokio::join!(closing, &mut writer);
            r.and(written)
        }
        Err(written) => {
            session.close_quietly().await;
            written.and(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the output closed",
            )))
        }
    }
}

/// Writes each queued line, flushing whenever the queue is empty.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut output: W,
    mut lines: mpsc::Receiver<String>,
) -> io::Result<()> {
    while let Some(line) = lines.recv().await {
        output.write_all(line.as_bytes()).await?;
        output.write_all(b"\n").await?;
        if lines.is_empty() {
            output.flush().await?;
        }
    }
    output.flush().await?;
    output.shutdown().await
}
