//! docs/json-rpc.md stays true: its example session is piped through
//! `serve` exactly as written, and every response must have the shape the
//! page shows. Alone in its own test binary because it changes the
//! working directory (the session names its passphrase file relative to
//! it, as a person pasting it would).

mod rpc_support;

use std::collections::BTreeSet;

use allium_onion::MemoryNetwork;
use serde_json::Value;

const DOC: &str = include_str!("../docs/json-rpc.md");

/// The lines of the fenced block that follows `marker`.
fn block(marker: &str) -> Vec<&str> {
    let mut lines = DOC
        .lines()
        .skip_while(|l| l.trim() != marker)
        .skip(1)
        .skip_while(|l| !l.starts_with("```"));
    assert!(lines.next().is_some(), "no fenced block after {marker}");
    lines
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Members whose values depend on timing and on Tor: only their kind is
/// checked.
const VOLATILE: &[&str] = &["intake", "endpoint", "tor"];

/// Whether `actual` has the documented shape: the same members
/// everywhere, equal values except for volatile members and for addresses
/// the requests did not name (the profile's own, which is new each time).
fn same_shape(
    documented: &Value,
    actual: &Value,
    requested: &str,
    path: &str,
) -> Result<(), String> {
    let fail = || Err(format!("at {path}: documented {documented}, got {actual}"));
    match (documented, actual) {
        (Value::Object(d), Value::Object(a)) => {
            let dk: BTreeSet<_> = d.keys().collect();
            let ak: BTreeSet<_> = a.keys().collect();
            if dk != ak {
                return Err(format!("at {path}: documented members {dk:?}, got {ak:?}"));
            }
            for (k, dv) in d {
                let p = format!("{path}.{k}");
                if VOLATILE.contains(&k.as_str()) {
                    let kind_ok = match (dv, &a[k]) {
                        (Value::Object(x), Value::Object(y)) => {
                            x.keys().collect::<BTreeSet<_>>() == y.keys().collect()
                        }
                        (Value::Object(_), _) | (_, Value::Object(_)) => false,
                        _ => true,
                    };
                    if !kind_ok {
                        return Err(format!("at {p}: documented {dv}, got {}", a[k]));
                    }
                } else {
                    same_shape(dv, &a[k], requested, &p)?;
                }
            }
            Ok(())
        }
        (Value::Array(d), Value::Array(a)) if d.len() == a.len() => d
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (d, a))| same_shape(d, a, requested, &format!("{path}[{i}]"))),
        (Value::String(d), Value::String(a))
            if d.starts_with("allium:") && !requested.contains(d.as_str()) =>
        {
            if a.starts_with("allium:") && a.len() == d.len() {
                Ok(())
            } else {
                fail()
            }
        }
        _ if documented == actual => Ok(()),
        _ => fail(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_session_works_as_written() {
    let requests = block("<!-- example-session:requests -->");
    let documented: Vec<Value> = block("<!-- example-session:responses -->")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(requests.len() >= 10, "the session shows the main methods");
    let all_requests = requests.join("\n");

    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    std::fs::write("passphrase.txt", "vivid unpaved frisbee tycoon\n").unwrap();

    let net = MemoryNetwork::new();
    let mut input = all_requests.clone().into_bytes();
    input.push(b'\n');
    let mut output = Vec::new();
    tokio::time::timeout(
        rpc_support::PATIENCE,
        allium::rpc::serve(rpc_support::backend(&net), &input[..], &mut output),
    )
    .await
    .expect("the session ends")
    .expect("serve ends cleanly");

    let lines: Vec<Value> = String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (responses, notifications): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|v| v.get("id").is_some());
    // To rewrite the page after a deliberate change of the interface:
    // ALLIUM_DUMP_SESSION=1 cargo test --test rpc_doc -- --nocapture
    if std::env::var_os("ALLIUM_DUMP_SESSION").is_some() {
        for line in &lines {
            println!("{line}");
        }
    }
    assert_eq!(
        responses.len(),
        documented.len(),
        "one documented response per request with an id"
    );
    for (d, a) in documented.iter().zip(&responses) {
        if let Err(e) = same_shape(d, a, &all_requests, "response") {
            panic!("the page's response differs from the real one: {e}\nreal: {a}");
        }
    }

    // Every notification is one the page describes.
    assert!(!notifications.is_empty());
    for n in notifications {
        match n["method"].as_str() {
            Some("tor") => {}
            Some("event") => {
                let name = n["params"]["event"].as_str().expect("events are named");
                assert!(
                    DOC.contains(&format!("| `{name}` |")),
                    "event {name} is not in the page's table"
                );
            }
            _ => panic!("undocumented notification {n}"),
        }
    }
}
