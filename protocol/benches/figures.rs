//! The benchmark comparisons as one JSON object on stdout, for pasting into
//! a README table: handshakes per second and seal + open MiB/s, Allium and
//! bare, and each ratio allium / bare (1.0 would be no overhead). `ratio`
//! is always against the primitive (bare `snow` handshake, bare
//! ChaCha20-Poly1305); seal + open also gives `ratio_to_snow_transport`.
//!
//! ```text
//! cargo bench -p allium-protocol --bench figures                # ~20 s
//! cargo bench -p allium-protocol --bench figures -- --quick     # ~6 s
//! cargo bench -p allium-protocol --bench figures -- --rounds 15 --batch-ms 300
//! ```
//!
//! Each workload (from `workloads/mod.rs`, the same code criterion times)
//! is calibrated to batches of about `--batch-ms`; then the workloads of a
//! comparison (Allium and its bare twins) run one batch each in turn, for
//! `--rounds` rounds, and the fastest batch of each counts. On a shared
//! machine other processes only ever slow a batch down, so the fastest is
//! the least disturbed, and taking turns exposes both sides of a ratio to
//! the same load.
//!
//! Without `--bench` (as `cargo test --benches` runs it) each workload runs
//! once, to check that it works, and nothing is timed.

mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use workloads::{
    BareAead, BareSnowTransport, Handshakes, LARGE_PAYLOAD, Link, Pattern, Payload, SMALL_PAYLOAD,
};

const MIB: f64 = 1024.0 * 1024.0;

struct Settings {
    rounds: u32,
    batch: Duration,
}

fn main() {
    workloads::settle_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        smoke();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let settings = Settings {
        rounds: number("--rounds")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(if quick { 3 } else { 7 })
            .max(1),
        batch: Duration::from_millis(
            number("--batch-ms")
                .unwrap_or(if quick { 80 } else { 200 })
                .max(1),
        ),
    };
    eprintln!(
        "figures: best of {} interleaved batches of ~{} ms per workload",
        settings.rounds,
        settings.batch.as_millis()
    );

    let mut out = serde_json::Map::new();
    out.insert(
        "about".into(),
        json!({
            "ratio": "allium / bare, from rates (1.0 = no overhead; 0.5 = half the rate)",
            "rounds": settings.rounds,
            "batch_ms": settings.batch.as_millis() as u64,
            "estimator": "fastest batch of each workload, the batches of a comparison taking turns",
            "seeds": "fixed (ChaCha20)",
        }),
    );

    for (key, pattern) in [
        ("handshake_intake", Pattern::Intake),
        ("handshake_endpoint", Pattern::Endpoint),
    ] {
        let mut allium = Handshakes::default();
        let mut bare = Handshakes::default();
        let mut run_allium = || drop(black_box(allium.allium(pattern)));
        let mut run_bare = || drop(black_box(bare.bare(pattern)));
        let t = compare(&settings, &mut [&mut run_allium, &mut run_bare]);
        let (a, b) = (1.0 / t[0], 1.0 / t[1]);
        eprintln!("{key}: allium {a:.0}/s, bare snow {b:.0}/s");
        out.insert(
            key.into(),
            json!({
                "unit": "handshakes/s",
                "pattern": pattern.noise_name(),
                "allium": round(a),
                "bare_snow": round(b),
                "ratio": round(a / b),
            }),
        );
    }

    for (key, size) in [
        ("seal_open_1KiB", SMALL_PAYLOAD),
        ("seal_open_63KiB", LARGE_PAYLOAD),
    ] {
        let mut chunk = Link::new(Payload::Chunk(size));
        let mut chat = Link::new(Payload::Chat(size.min(SMALL_PAYLOAD)));
        let mut transport = BareSnowTransport::new(size);
        let mut aead = BareAead::new(size);
        let encrypted = chunk.padded_len();
        let mut run_chunk = || chunk.round_trip();
        let mut run_transport = || transport.round_trip();
        let mut run_aead = || aead.round_trip();
        let mut run_chat = || chat.round_trip();
        let mut workloads: Vec<&mut dyn FnMut()> =
            vec![&mut run_chunk, &mut run_transport, &mut run_aead];
        // Chat text is capped at 4,000 bytes, so only the small case has one.
        if size == SMALL_PAYLOAD {
            workloads.push(&mut run_chat);
        }
        let t = compare(&settings, &mut workloads);
        let rate: Vec<f64> = t.iter().map(|t| size as f64 / t / MIB).collect();
        eprintln!(
            "{key}: allium {:.1} MiB/s, bare snow transport {:.1} MiB/s, \
             bare ChaCha20-Poly1305 {:.1} MiB/s",
            rate[0], rate[1], rate[2]
        );
        let mut entry = json!({
            "unit": "MiB/s of payload",
            "payload_bytes": size,
            "allium_encrypted_bytes": encrypted,
            "allium_file_chunk": round(rate[0]),
            "bare_snow_transport": round(rate[1]),
            "bare_chacha20poly1305": round(rate[2]),
            "ratio": round(rate[0] / rate[2]),
            "ratio_to_snow_transport": round(rate[0] / rate[1]),
        });
        if let (Some(c), Some(map)) = (rate.get(3), entry.as_object_mut()) {
            eprintln!("{key}: allium chat {c:.1} MiB/s");
            map.insert("allium_chat".into(), json!(round(*c)));
            map.insert("ratio_chat".into(), json!(round(c / rate[2])));
        }
        out.insert(key.into(), entry);
    }

    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(out)).expect("json")
    );
}

/// Seconds per iteration of each workload (see the module documentation).
fn compare(settings: &Settings, workloads: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let counts: Vec<u64> = workloads
        .iter_mut()
        .map(|f| calibrate(&mut **f, settings.batch))
        .collect();
    let mut best = vec![f64::INFINITY; workloads.len()];
    for _ in 0..settings.rounds {
        for ((f, n), best) in workloads.iter_mut().zip(&counts).zip(&mut best) {
            *best = best.min(batch(&mut **f, *n).as_secs_f64() / *n as f64);
        }
    }
    best
}

/// Iterations that take about `target`; also warms the workload up.
fn calibrate(f: &mut dyn FnMut(), target: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let took = batch(f, n);
        if took >= target / 8 || n >= 1 << 30 {
            let per = took.as_secs_f64() / n as f64;
            return ((target.as_secs_f64() / per.max(1e-12)) as u64).max(1);
        }
        n *= 2;
    }
}

fn batch(f: &mut dyn FnMut(), n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed()
}

/// Four significant digits are more than the noise allows.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn smoke() {
    for pattern in [Pattern::Intake, Pattern::Endpoint] {
        Handshakes::default().allium(pattern);
        Handshakes::default().bare(pattern);
    }
    for payload in [
        Payload::Chunk(SMALL_PAYLOAD),
        Payload::Chat(SMALL_PAYLOAD),
        Payload::Chunk(LARGE_PAYLOAD),
    ] {
        Link::new(payload).round_trip();
        BareSnowTransport::new(payload.bytes()).round_trip();
        BareAead::new(payload.bytes()).round_trip();
    }
    println!(
        "figures: every workload ran once (pass --bench, as `cargo bench` does, to time them)"
    );
}
