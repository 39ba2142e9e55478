//! The Allium application: the engine (contacts, sessions, delivery,
//! files), the headless JSON-RPC interface and the desktop window, on top
//! of `allium-protocol` (wire), `allium-onion` (Tor) and `allium-vault`
//! (storage). The `allium` binary is a thin command line over this.

pub mod app;
pub mod engine;
pub mod rpc;
pub mod ui;
pub mod wordlist;
