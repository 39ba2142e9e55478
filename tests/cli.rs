//! The `allium` command line, where it can be checked without Tor: the
//! address checker and the log switch. (Both stop before any network is
//! touched; `tests/headless_tor.rs` runs the binary on the local network.)

use std::process::{Command, Output};

fn allium(args: &[&str], log: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_allium"));
    cmd.args(args).arg("--data-dir").arg(dir.path());
    match log {
        Some(filter) => cmd.env("ALLIUM_LOG", filter),
        None => cmd.env_remove("ALLIUM_LOG"),
    };
    cmd.output().expect("allium runs")
}

#[test]
fn a_bad_log_filter_stops_with_what_to_do() {
    let out = allium(&["headless"], Some("info,["));
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ALLIUM_LOG=info,[ is not a log filter. Try ALLIUM_LOG=info or ALLIUM_LOG=debug, or \
         unset it.\n"
    );
    assert!(out.stdout.is_empty(), "nothing on the JSON-RPC channel");
}

#[test]
fn check_address_prints_the_canonical_form_or_says_what_is_wrong() {
    let id = "oux74ghgqvhwvppdwrmofxgfp3uxfehx4t6zqbysodzismz2t6lnx6id";
    let ok = allium(&["check-address", &format!("{id}.onion")], None);
    assert!(ok.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        format!("allium:{id}\n")
    );

    let typo = allium(&["check-address", &id.replace('o', "0")], None);
    assert!(!typo.status.success());
    assert!(typo.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&typo.stderr),
        "Not a valid Allium address: the address contains a character that cannot appear in \
         an address (only a–z and 2–7 can).\n"
    );
}
