#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| allium_protocol::fuzz_harness::endpoint_initiator(data));
