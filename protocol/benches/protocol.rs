//! Criterion benchmarks of the protocol's costly paths, each beside the
//! bare primitive it is built on (see `workloads/mod.rs`):
//!
//! * `handshake/intake`: Allium's XX handshake vs bare `snow` XX;
//! * `handshake/endpoint`: Allium's IK handshake vs bare `snow` IK;
//! * `seal_open/1KiB` and `seal_open/63KiB`: one message through an
//!   established session pair vs ChaCha20-Poly1305 encrypt + decrypt of the
//!   same payload, and vs stock `snow` transport messages of that payload
//!   (which isolates the protocol's framing, encoding and padding). 63 KiB
//!   is the largest file chunk a message can carry.
//!
//! Kept short (20 samples, 2 s each) for a small, busy machine.
//! `cargo bench -p allium-protocol` also runs `figures`, which prints the
//! same comparisons as one JSON object.

mod workloads;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use workloads::{
    BareAead, BareSnowTransport, Handshakes, LARGE_PAYLOAD, Link, Pattern, Payload, SMALL_PAYLOAD,
};

fn config() -> Criterion {
    workloads::settle_allocator();
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn handshakes(c: &mut Criterion) {
    for (name, pattern) in [("intake", Pattern::Intake), ("endpoint", Pattern::Endpoint)] {
        let mut group = c.benchmark_group(format!("handshake/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut hs = Handshakes::default();
        group.bench_function("allium", |b| b.iter(|| hs.allium(pattern)));
        let mut hs = Handshakes::default();
        group.bench_function("bare_snow", |b| b.iter(|| hs.bare(pattern)));
        group.finish();
    }
}

fn seal_open(c: &mut Criterion) {
    for (name, size) in [("1KiB", SMALL_PAYLOAD), ("63KiB", LARGE_PAYLOAD)] {
        let mut group = c.benchmark_group(format!("seal_open/{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        let mut link = Link::new(Payload::Chunk(size));
        group.bench_function(BenchmarkId::new("allium", "file_chunk"), |b| {
            b.iter(|| link.round_trip())
        });
        if size == SMALL_PAYLOAD {
            // A chat message of the same size adds text validation.
            let mut link = Link::new(Payload::Chat(size));
            group.bench_function(BenchmarkId::new("allium", "chat"), |b| {
                b.iter(|| link.round_trip())
            });
        }
        let mut transport = BareSnowTransport::new(size);
        group.bench_function("bare_snow_transport", |b| b.iter(|| transport.round_trip()));
        let mut aead = BareAead::new(size);
        group.bench_function("bare_chacha20poly1305", |b| b.iter(|| aead.round_trip()));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = handshakes, seal_open
}
criterion_main!(benches);
