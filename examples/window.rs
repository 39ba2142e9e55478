//! The window over the in-memory backend: every profile and peer lives in
//! this process and nothing touches Tor, the network or the disk. For
//! looking at the window and trying it out; the `allium` binary uses the
//! real backend.
//!
//! `cargo run --example window`

use std::sync::Arc;

use allium::app::MemoryBackend;
use allium::engine::EngineConfig;
use allium_onion::MemoryNetwork;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let backend = Arc::new(MemoryBackend::new(
        MemoryNetwork::new(),
        EngineConfig::default(),
    ));
    allium::ui::run(backend, runtime.handle().clone())?;
    Ok(())
}
