//! The headless JSON-RPC interface, driven over in-memory pipes with real
//! engines on the in-memory network.

mod rpc_support;

use std::os::fd::AsRawFd;

use allium_onion::MemoryNetwork;
use rpc_support::{Client, backend, passphrase_file};
use serde_json::{Value, json};

fn code(error: &Value) -> (&Value, &Value) {
    (&error["code"], &error["data"]["code"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_from_a_passphrase_file_and_its_status() {
    let net = MemoryNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(backend(&net));

    assert_eq!(
        c.ok("profile.list", json!({})).await,
        json!({"profiles": []})
    );
    let pass = passphrase_file(dir.path(), "pass", "vivid unpaved frisbee tycoon");
    let opened = c
        .ok(
            "profile.create",
            json!({"name": "alice", "passphrase_file": pass}),
        )
        .await;
    assert_eq!(opened["profile"], "alice");
    assert_eq!(opened["amnesic"], false);
    let address = opened["address"].as_str().unwrap().to_owned();
    assert!(
        address.starts_with("allium:") && address.len() == 63,
        "{address}"
    );
    assert_eq!(
        c.ok("profile.list", json!(null)).await,
        json!({"profiles": ["alice"]})
    );

    let tor = c.notification("tor", |n| n["method"] == "tor").await;
    assert_eq!(
        tor["params"],
        json!({"state": "ready", "fraction": 1.0, "phase": null, "message": null})
    );
    let status = c.ok("status", json!({})).await;
    assert_eq!(status["address"], address.as_str());
    assert_eq!(status["profile"], "alice");
    assert_eq!(status["amnesic"], false);
    assert_eq!(status["intake_enabled"], true);
    assert_eq!(status["tor"]["state"], "ready");
    assert_eq!(status["save_error"], Value::Null);
    // The services come up on their own; the events say so.
    c.event("service", |e| {
        e["intake"] == false && e["state"] == "reachable"
    })
    .await;
    c.event("service", |e| {
        e["intake"] == true && e["state"] == "reachable"
    })
    .await;
    let status = c.ok("status", json!({})).await;
    assert_eq!(
        (&status["intake"], &status["endpoint"]),
        (&json!("reachable"), &json!("reachable"))
    );

    assert_eq!(c.ok("shutdown", json!({})).await, Value::Null);
    c.finish().await.expect("clean end");
}

/// Two headless peers add each other, chat both ways and move a file,
/// seeing every step as notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_befriend_chat_and_send_a_file() {
    let net = MemoryNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let mut a = Client::start(backend(&net));
    let mut b = Client::start(backend(&net));
    let pass = passphrase_file(dir.path(), "pass", "a passphrase for the test");
    a.ok(
        "profile.create",
        json!({"name": "a", "passphrase_file": pass}),
    )
    .await;
    let b_address = b.ok("profile.amnesic", json!({"intake": true})).await["address"]
        .as_str()
        .unwrap()
        .to_owned();

    let added = a
        .ok(
            "contacts.add",
            json!({"address": b_address, "nickname": "Bee", "greeting": "hello, it is a"}),
        )
        .await;
    let b_at_a = added["contact"].clone();
    assert!(b_at_a.is_u64(), "{added}");
    let request = b.event("request_received", |_| true).await;
    assert_eq!(request["contact"]["greeting"], "hello, it is a");
    assert_eq!(request["contact"]["state"], "incoming_pending");
    let a_at_b = request["contact"]["id"].clone();
    a.event("request_delivered", |e| e["contact"] == b_at_a)
        .await;

    b.ok(
        "contacts.accept",
        json!({"contact": a_at_b, "nickname": "Ay"}),
    )
    .await;
    a.event("request_accepted", |e| e["contact"] == b_at_a)
        .await;
    a.event("presence", |e| {
        e["contact"] == b_at_a && e["online"] == true
    })
    .await;
    b.event("presence", |e| {
        e["contact"] == a_at_b && e["online"] == true
    })
    .await;
    let listed = b.ok("contacts.list", json!({})).await;
    assert_eq!(listed["contacts"][0]["nickname"], "Ay");
    assert_eq!(listed["contacts"][0]["state"], "accepted");

    // a keeps history with b; b does not with a.
    a.ok("history.set", json!({"contact": b_at_a, "enabled": true}))
        .await;
    let sent = a
        .ok("messages.send", json!({"contact": b_at_a, "text": "hi b"}))
        .await;
    assert_eq!(sent, json!({"id": 1}));
    let got = b.event("message_received", |_| true).await;
    assert_eq!(got["contact"], a_at_b);
    assert_eq!(got["message"]["text"], "hi b");
    assert_eq!(got["message"]["direction"], "incoming");
    a.event("message_state", |e| {
        e["contact"] == b_at_a && e["id"] == 1 && e["state"] == "delivered"
    })
    .await;

    b.ok("messages.send", json!({"contact": a_at_b, "text": "hi a"}))
        .await;
    let got = a.event("message_received", |_| true).await;
    assert_eq!(got["message"]["text"], "hi a");
    b.event("message_state", |e| {
        e["id"] == 1 && e["state"] == "delivered"
    })
    .await;

    let history = a.ok("history.get", json!({"contact": b_at_a})).await;
    let texts: Vec<(&Value, &Value)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["direction"], &m["text"]))
        .collect();
    assert_eq!(
        texts,
        [
            (&json!("outgoing"), &json!("hi b")),
            (&json!("incoming"), &json!("hi a"))
        ]
    );

    // A file, bigger than one chunk, arrives with identical bytes.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let source = dir.path().join("report.pdf");
    std::fs::write(&source, &content).unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let offered = a
        .ok(
            "files.send",
            json!({"contact": b_at_a, "path": source.to_str().unwrap()}),
        )
        .await;
    let transfer = offered["transfer"].as_str().unwrap().to_owned();
    let offer = b
        .event("file_offered", |e| e["transfer"]["id"] == transfer.as_str())
        .await;
    assert_eq!(offer["transfer"]["name"], "report.pdf");
    assert_eq!(offer["transfer"]["size"], content.len());
    assert_eq!(offer["transfer"]["direction"], "incoming");
    let waiting = b.ok("files.list", json!({})).await;
    assert_eq!(waiting["transfers"][0]["id"], transfer.as_str());
    b.ok(
        "files.accept",
        json!({"transfer": transfer, "folder": inbox.to_str().unwrap()}),
    )
    .await;
    let done = b
        .event("file_completed", |e| {
            e["transfer"]["id"] == transfer.as_str()
        })
        .await;
    let path = done["path"].as_str().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), content);
    a.event("file_completed", |e| {
        e["transfer"]["id"] == transfer.as_str()
    })
    .await;
    assert_eq!(
        a.ok("files.list", json!({})).await,
        json!({"transfers": []})
    );

    // A cancelled offer reaches the other side as such.
    let offered = a
        .ok(
            "files.send",
            json!({"contact": b_at_a, "path": source.to_str().unwrap()}),
        )
        .await;
    let second = offered["transfer"].as_str().unwrap().to_owned();
    b.event("file_offered", |e| e["transfer"]["id"] == second.as_str())
        .await;
    b.ok("files.cancel", json!({"transfer": second})).await;
    let cancelled = a
        .event("file_cancelled", |e| e["transfer"]["id"] == second.as_str())
        .await;
    assert_eq!(cancelled["cancelled"]["by_peer"], true);

    a.ok("shutdown", json!({})).await;
    b.close_input().await;
    a.finish().await.expect("a ends cleanly");
    b.finish().await.expect("b ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_off_hides_the_address_and_on_shows_it_again() {
    let net = MemoryNetwork::new();
    let mut a = Client::start(backend(&net));
    let mut stranger = Client::start(backend(&net));
    let address = a.ok("profile.amnesic", json!({"intake": true})).await["address"].clone();
    stranger.ok("profile.amnesic", json!({})).await;
    a.event("service", |e| {
        e["intake"] == true && e["state"] == "reachable"
    })
    .await;

    a.ok("intake.set", json!({"enabled": false})).await;
    let status = a.ok("status", json!({})).await;
    assert_eq!(status["intake_enabled"], false);
    assert_eq!(status["intake"], Value::Null);

    let added = stranger
        .ok("contacts.add", json!({"address": address}))
        .await;
    // Several dial attempts (the backoff starts at 50 ms) find nothing.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let listed = stranger.ok("contacts.list", json!({})).await;
    assert_eq!(listed["contacts"][0]["request_delivered"], false);

    a.ok("intake.set", json!({"enabled": true})).await;
    assert_eq!(a.ok("status", json!({})).await["intake_enabled"], true);
    a.event("request_received", |_| true).await;
    stranger
        .event("request_delivered", |e| e["contact"] == added["contact"])
        .await;
    assert!(
        !a.notifications
            .iter()
            .any(|n| n["params"]["event"] == "request_received"),
        "no request arrived while the intake was off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_the_documented_errors() {
    let net = MemoryNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(backend(&net));

    c.send_line(b"{\"jsonrpc\":\"2.0\",").await;
    let r = c.response().await;
    assert_eq!(r["id"], Value::Null);
    assert_eq!(code(&r["error"]), (&json!(-32700), &json!("parse_error")));

    c.send_line(br#"[{"jsonrpc":"2.0","id":1,"method":"status"}]"#)
        .await;
    let r = c.response().await;
    assert_eq!(
        code(&r["error"]),
        (&json!(-32600), &json!("batch_not_supported"))
    );

    c.send_line(br#"{"jsonrpc":"2.0","id":"x","method":7}"#)
        .await;
    let r = c.response().await;
    assert_eq!(r["id"], "x");
    assert_eq!(
        code(&r["error"]),
        (&json!(-32600), &json!("invalid_request"))
    );

    // Invalid UTF-8 is a parse error too, not a crash.
    c.send_line(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}")
        .await;
    let r = c.response().await;
    assert_eq!(code(&r["error"]), (&json!(-32700), &json!("parse_error")));

    let e = c.err("contacts.frobnicate", json!({})).await;
    assert_eq!(code(&e), (&json!(-32601), &json!("no_such_method")));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("contacts.frobnicate")
    );

    // Nothing but profile.* works before a profile is open.
    for (method, params) in [
        ("status", json!({})),
        ("messages.send", json!({"contact": 1, "text": "hi"})),
        ("contacts.list", json!({})),
    ] {
        let e = c.err(method, params).await;
        assert_eq!(code(&e), (&json!(-32001), &json!("not_open")), "{method}");
        assert!(e["message"].as_str().unwrap().contains("profile.create"));
    }

    // Params: which one is wrong, in the data and the message.
    let e = c.err("profile.create", json!({"name": "x"})).await;
    assert_eq!(code(&e), (&json!(-32602), &json!("invalid_params")));
    assert_eq!(e["data"]["param"], "passphrase_file");
    let e = c
        .err("profile.create", json!({"name": 5, "passphrase_file": "p"}))
        .await;
    assert_eq!(e["data"]["param"], "name");
    let e = c
        .err(
            "profile.create",
            json!({"name": "x", "passphrase": "in the request"}),
        )
        .await;
    assert_eq!(e["data"]["param"], "passphrase_file");
    let missing = dir.path().join("nope");
    let e = c
        .err(
            "profile.create",
            json!({"name": "x", "passphrase_file": missing.to_str().unwrap()}),
        )
        .await;
    assert_eq!(code(&e), (&json!(-32001), &json!("passphrase_unreadable")));
    assert!(
        e["message"].as_str().unwrap().contains("cannot open"),
        "{e}"
    );
    let r = c.call("status", json!([1, 2])).await;
    assert_eq!(
        code(&r["error"]),
        (&json!(-32602), &json!("invalid_params"))
    );

    c.ok("profile.amnesic", json!({})).await;
    let e = c.err("contacts.accept", json!({"contact": "one"})).await;
    assert_eq!(e["data"]["param"], "contact");
    let e = c
        .err("intake.set", json!({"enabled": true, "really": true}))
        .await;
    assert_eq!(e["data"]["param"], "really");
    let e = c.err("intake.set", json!({"enabled": "yes"})).await;
    assert_eq!(e["data"]["param"], "enabled");

    // Engine refusals carry the engine's words and a stable name.
    let e = c
        .err("messages.send", json!({"contact": 42, "text": "hi"}))
        .await;
    assert_eq!(code(&e), (&json!(-32003), &json!("no_such_contact")));
    let e = c
        .err("contacts.add", json!({"address": "allium:not-an-address"}))
        .await;
    assert_eq!(code(&e), (&json!(-32003), &json!("bad_address")));
    let e = c.err("files.cancel", json!({"transfer": "00"})).await;
    assert_eq!(code(&e), (&json!(-32003), &json!("no_such_transfer")));

    // One profile per process.
    let e = c.err("profile.amnesic", json!({})).await;
    assert_eq!(code(&e), (&json!(-32001), &json!("already_open")));

    // A notification (no id) is carried out but not answered: the next
    // response is the next request's.
    c.send_line(br#"{"jsonrpc":"2.0","method":"intake.set","params":{"enabled":false}}"#)
        .await;
    let status = c.ok("status", json!({})).await;
    assert_eq!(status["intake_enabled"], false);

    c.close_input().await;
    c.finish().await.expect("clean end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_line_is_refused_and_skipped() {
    let net = MemoryNetwork::new();
    let mut c = Client::start(backend(&net));
    let mut huge = br#"{"jsonrpc":"2.0","id":1,"method":"profile.list","params":{"x":""#.to_vec();
    huge.resize(allium::rpc::MAX_LINE + 1, b'a');
    c.send_line(&huge).await;
    let r = c.response().await;
    assert_eq!(r["id"], Value::Null);
    assert_eq!(code(&r["error"]), (&json!(-32600), &json!("line_too_long")));
    // The stream is still in step: the next line is the next request.
    assert_eq!(
        c.ok("profile.list", json!({})).await,
        json!({"profiles": []})
    );
    c.close_input().await;
    c.finish().await.expect("clean end");
}

/// What one session saved, the next unlocks, with the right passphrase
/// only; the passphrase may come from an inherited file descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_input_saves_and_only_the_right_passphrase_unlocks() {
    let net = MemoryNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(&net);
    let other = tempfile::tempdir().unwrap();
    let mut peer = Client::start(rpc_support::backend(&net));
    let peer_address = peer.ok("profile.amnesic", json!({})).await["address"].clone();

    let mut c = Client::start(backend.clone());
    let right = passphrase_file(dir.path(), "right", "the right passphrase for this test");
    let first = c
        .ok(
            "profile.create",
            json!({"name": "j", "passphrase_file": right}),
        )
        .await;
    c.ok(
        "contacts.add",
        json!({"address": peer_address, "nickname": "Source"}),
    )
    .await;
    c.close_input().await;
    c.finish().await.expect("serve ends at end of input");

    let mut c = Client::start(backend);
    let wrong = passphrase_file(other.path(), "wrong", "the wrong passphrase for this test");
    let e = c
        .err(
            "profile.unlock",
            json!({"name": "j", "passphrase_file": wrong}),
        )
        .await;
    assert_eq!(code(&e), (&json!(-32002), &json!("wrong_passphrase")));
    let e = c
        .err(
            "profile.unlock",
            json!({"name": "k", "passphrase_file": right}),
        )
        .await;
    assert_eq!(code(&e), (&json!(-32002), &json!("no_such_profile")));
    let e = c
        .err(
            "profile.create",
            json!({"name": "j", "passphrase_file": right}),
        )
        .await;
    assert_eq!(code(&e), (&json!(-32002), &json!("profile_exists")));

    let file = std::fs::File::open(dir.path().join("right")).unwrap();
    let unlocked = c
        .ok(
            "profile.unlock",
            json!({"name": "j", "passphrase_fd": file.as_raw_fd()}),
        )
        .await;
    assert_eq!(unlocked["address"], first["address"]);
    let contacts = c.ok("contacts.list", json!({})).await;
    assert_eq!(contacts["contacts"][0]["nickname"], "Source");
    assert_eq!(contacts["contacts"][0]["state"], "outgoing_pending");
    c.ok("shutdown", json!({})).await;
    c.finish().await.expect("clean end");
}
