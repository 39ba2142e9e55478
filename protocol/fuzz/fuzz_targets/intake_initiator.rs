#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| allium_protocol::fuzz_harness::intake_initiator(data));
