//! The benchmark comparisons as one JSON object on stdout, for pasting into
//! a README table: handshakes per second and seal + open MiB/s, Allium and
//! bare, and each ratio allium / bare (1.0 would be no overhead).
//!
//! ```text
//! cargo bench -p allium-protocol --bench figures                # ~20 s
//! cargo bench -p allium-protocol --bench figures -- --quick     # ~6 s
//! cargo bench -p allium-protocol --bench figures -- --rounds 15 --batch-ms 300
//! ```
//!
//! Each workload (from `workloads/mod.rs`, the same code criterion times)
//! is calibrated to batches of about `--batch-ms`; then batches of the
//! Allium and the bare workload alternate for `--rounds` rounds and the
//! fastest batch of each counts. On a shared machine other processes only
//! ever slow a batch down, so the fastest is the least disturbed, and
//! alternating exposes both sides of a ratio to the same load.
//!
//! Without `--bench` (as `cargo test --benches` runs it) each workload runs
//! once, to check that it works, and nothing is timed.

mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use workloads::{BareAead, Handshakes, LARGE_PAYLOAD, Link, Pattern, Payload, SMALL_PAYLOAD};

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
            "estimator": "fastest batch of each, allium and bare batches alternating",
            "seeds": "fixed (ChaCha20)",
        }),
    );

    for (key, pattern) in [
        ("handshake_intake", Pattern::Intake),
        ("handshake_endpoint", Pattern::Endpoint),
    ] {
        let mut allium = Handshakes::default();
        let mut bare = Handshakes::default();
        let (a, b) = compare(
            &settings,
            || drop(black_box(allium.allium(pattern))),
            || drop(black_box(bare.bare(pattern))),
        );
        let (a, b) = (1.0 / a, 1.0 / b);
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
        let mut entry = serde_json::Map::new();
        entry.insert("unit".into(), json!("MiB/s of payload"));
        entry.insert("payload_bytes".into(), json!(size));
        let mut link = Link::new(Payload::Chunk(size));
        entry.insert("allium_encrypted_bytes".into(), json!(link.padded_len()));
        let mut aead = BareAead::new(size);
        let (a, b) = compare(&settings, || link.round_trip(), || aead.round_trip());
        let (a, b) = (size as f64 / a / MIB, size as f64 / b / MIB);
        eprintln!("{key}: allium {a:.1} MiB/s, bare ChaCha20-Poly1305 {b:.1} MiB/s");
        entry.insert("allium_file_chunk".into(), json!(round(a)));
        entry.insert("bare_chacha20poly1305".into(), json!(round(b)));
        entry.insert("ratio".into(), json!(round(a / b)));
        if size == SMALL_PAYLOAD {
            let mut chat = Link::new(Payload::Chat(size));
            let mut aead = BareAead::new(size);
            let (c, b) = compare(&settings, || chat.round_trip(), || aead.round_trip());
            let (c, b) = (size as f64 / c / MIB, size as f64 / b / MIB);
            eprintln!("{key} (chat): allium {c:.1} MiB/s, bare {b:.1} MiB/s");
            entry.insert("allium_chat".into(), json!(round(c)));
            entry.insert("ratio_chat".into(), json!(round(c / b)));
        }
        out.insert(key.into(), Value::Object(entry));
    }

    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(out)).expect("json")
    );
}

/// Seconds per iteration of `a` and of `b` (see the module documentation).
fn compare(settings: &Settings, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let na = calibrate(&mut a, settings.batch);
    let nb = calibrate(&mut b, settings.batch);
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..settings.rounds {
        best_a = best_a.min(batch(&mut a, na).as_secs_f64() / na as f64);
        best_b = best_b.min(batch(&mut b, nb).as_secs_f64() / nb as f64);
    }
    (best_a, best_b)
}

/// Iterations that take about `target`; also warms the workload up.
fn calibrate(f: &mut impl FnMut(), target: Duration) -> u64 {
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

fn batch(f: &mut impl FnMut(), n: u64) -> Duration {
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
        BareAead::new(payload.bytes()).round_trip();
    }
    println!(
        "figures: every workload ran once (pass --bench, as `cargo bench` does, to time them)"
    );
}
