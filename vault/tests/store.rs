//! Profiles under a data directory: names, locking, layout, and that
//! nothing sensitive is readable in any file there.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use allium_vault::{KdfParams, Profile, ProfileName, ProfileStore, VaultError};
use common::{files_under, full_profile, keys};

const PASS: &str = "seven amber lanterns";

fn name(s: &str) -> ProfileName {
    ProfileName::new(s).expect("test fixture")
}

fn store() -> (tempfile::TempDir, ProfileStore) {
    let dir = tempfile::tempdir().expect("test fixture");
    let store = ProfileStore::new(dir.path().join("data"));
    (dir, store)
}

fn create(store: &ProfileStore, n: &str, profile: &Profile) {
    store
        .create_with_params(&name(n), PASS, KdfParams::insecure_for_tests(), profile)
        .expect("test fixture");
}

#[test]
fn names_are_validated() {
    for good in [
        "work",
        "Journalist 2",
        "a",
        "tip-line_1",
        "Ünïcode Näme",
        "日本",
        &"x".repeat(32),
    ] {
        assert!(ProfileName::new(good).is_ok(), "{good:?} should be valid");
    }
    for bad in [
        "",
        " lead",
        "trail ",
        ".hidden",
        "..",
        "a/b",
        "a\\b",
        "tab\there",
        "new\nline",
        "dot.name",
        &"x".repeat(33),
        "nul\0",
        "e\u{301}",
    ] {
        let err = ProfileName::new(bad).unwrap_err();
        assert!(
            matches!(err, VaultError::InvalidProfileName),
            "{bad:?} should be invalid"
        );
    }
}

#[test]
fn create_list_unlock_delete() {
    let (_d, store) = store();
    assert!(
        store.list().unwrap().is_empty(),
        "no data dir yet: no profiles"
    );
    create(&store, "work", &full_profile());
    create(&store, "anonymous", &Profile::new(keys("b")));
    assert_eq!(store.list().unwrap(), vec![name("anonymous"), name("work")]);

    let (unlocked, profile) = store.unlock(&name("work"), PASS).unwrap();
    assert_eq!(profile, full_profile());
    assert_eq!(unlocked.name(), &name("work"));
    drop(unlocked);

    // Deleting overwrites before it removes: a descriptor held open on
    // the vault (as a disk's blocks would) reads zeros afterwards.
    let paths = store.paths(&name("work"));
    let vault_file = paths.dir.join("vault");
    let size = fs::metadata(&vault_file).unwrap().len();
    let mut held = fs::File::open(&vault_file).unwrap();
    store.delete(&name("work")).unwrap();
    let mut left = Vec::new();
    std::io::Read::read_to_end(&mut held, &mut left).unwrap();
    assert_eq!(left.len() as u64, size);
    assert!(
        left.iter().all(|b| *b == 0),
        "the vault's bytes were erased"
    );
    assert_eq!(store.list().unwrap(), vec![name("anonymous")]);
    assert!(!store.paths(&name("work")).dir.exists());
    let err = store.unlock(&name("work"), PASS).unwrap_err();
    assert!(matches!(err, VaultError::ProfileNotFound), "{err:?}");
    assert!(matches!(
        store.delete(&name("work")),
        Err(VaultError::ProfileNotFound)
    ));
}

/// A file with a second hard link (a backup made with `cp -al`) is not
/// zeroed: that would destroy the backup, not this copy. It is removed.
#[test]
fn deleting_leaves_hard_linked_backups_alone() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let vault_file = store.paths(&name("work")).dir.join("vault");
    let before = fs::read(&vault_file).unwrap();
    let backup = store.base_dir().join("backup-of-vault");
    fs::hard_link(&vault_file, &backup).unwrap();
    store.delete(&name("work")).unwrap();
    assert!(!vault_file.exists());
    assert_eq!(fs::read(&backup).unwrap(), before);
}

#[test]
fn hiding_profile_names_is_remembered_and_undone() {
    let (_d, store) = store();
    assert!(!store.names_hidden());
    store.set_names_hidden(true).unwrap();
    assert!(store.names_hidden());
    // Not a profile, and listing still works.
    assert!(store.list().unwrap().is_empty());
    store.set_names_hidden(false).unwrap();
    assert!(!store.names_hidden());
    store.set_names_hidden(false).unwrap();
}

#[test]
fn listing_ignores_what_is_not_a_profile() {
    let (_d, store) = store();
    create(&store, "real", &Profile::new(keys("r")));
    let profiles = store.base_dir().join("profiles");
    fs::create_dir(profiles.join("empty-dir")).unwrap();
    fs::create_dir(profiles.join(".hidden")).unwrap();
    fs::write(profiles.join("stray-file"), b"x").unwrap();
    assert_eq!(store.list().unwrap(), vec![name("real")]);
}

#[test]
fn creating_an_existing_name_fails_and_keeps_it() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let err = store
        .create_with_params(
            &name("work"),
            "x",
            KdfParams::insecure_for_tests(),
            &Profile::new(keys("o")),
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::ProfileExists), "{err:?}");
    assert_eq!(store.unlock(&name("work"), PASS).unwrap().1, full_profile());
}

#[test]
fn wrong_passphrase_through_the_store() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let err = store
        .unlock(&name("work"), "seven amber lantern")
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase), "{err:?}");
    // A failed unlock does not keep the profile locked.
    store.unlock(&name("work"), PASS).unwrap();
}

#[test]
fn a_profile_opens_only_once_at_a_time() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let (held, _) = store.unlock(&name("work"), PASS).unwrap();
    let err = store.unlock(&name("work"), PASS).unwrap_err();
    assert!(matches!(err, VaultError::ProfileInUse), "{err:?}");
    assert_eq!(
        err.to_string(),
        "this profile is already open in another Allium window"
    );
    assert!(matches!(
        store.delete(&name("work")),
        Err(VaultError::ProfileInUse)
    ));
    // It stays locked until the unlocked profile is gone.
    drop(held);
    store.unlock(&name("work"), PASS).unwrap();
}

#[test]
fn layout_and_permissions() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let (unlocked, _) = store.unlock(&name("work"), PASS).unwrap();
    let paths = unlocked.paths();
    assert_eq!(paths.dir, store.base_dir().join("profiles").join("work"));
    assert_eq!(paths.vault, paths.dir.join("vault"));
    assert_eq!(paths.tor_state, paths.dir.join("tor").join("state"));
    assert_eq!(paths.tor_cache, paths.dir.join("tor").join("cache"));
    for dir in [
        &store.base_dir().join("profiles"),
        &paths.dir,
        &paths.tor_state,
        &paths.tor_cache,
    ] {
        assert!(dir.is_dir());
        assert_eq!(
            fs::metadata(dir).unwrap().permissions().mode() & 0o777,
            0o700,
            "{dir:?}"
        );
    }
    for file in files_under(&paths.dir) {
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600,
            "{file:?}"
        );
    }
}

#[test]
fn unlocking_removes_unfinished_saves_left_by_a_crash() {
    let (_d, store) = store();
    create(&store, "work", &full_profile());
    let dir = store.paths(&name("work")).dir;
    let leftover = dir.join(".vault.tmp-0123456789abcdef");
    fs::write(&leftover, b"half a save").unwrap();
    let unrelated = dir.join("keep-me");
    fs::write(&unrelated, b"").unwrap();
    store.unlock(&name("work"), PASS).unwrap();
    assert!(!leftover.exists());
    assert!(unrelated.exists());
}

#[test]
fn saves_and_passphrase_changes_through_the_unlocked_profile() {
    let (_d, store) = store();
    create(&store, "work", &Profile::new(keys("s")));
    let (mut unlocked, mut profile) = store.unlock(&name("work"), PASS).unwrap();
    for i in 0..5 {
        profile.settings.display_name = format!("save {i}");
        unlocked.vault_mut().save(&profile).unwrap();
    }
    profile.settings.display_name = "after the new passphrase".into();
    unlocked
        .vault_mut()
        .change_passphrase(PASS, "new pass", &profile)
        .unwrap();
    assert!(matches!(
        unlocked
            .vault_mut()
            .change_passphrase("wrong", "x", &profile),
        Err(VaultError::WrongPassphrase)
    ));
    drop(unlocked);
    assert!(matches!(
        store.unlock(&name("work"), PASS),
        Err(VaultError::WrongPassphrase)
    ));
    assert_eq!(store.unlock(&name("work"), "new pass").unwrap().1, profile);
}

/// The forms a sensitive value could take in a file.
fn encodings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let hex = hex::encode(bytes);
    vec![
        bytes.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ]
}

#[test]
fn nothing_sensitive_is_readable_in_any_file() {
    let (_d, store) = store();
    let profile = full_profile();
    create(&store, "work", &profile);
    // Saved again, to cover the path of every later save too.
    let (mut unlocked, mut p) = store.unlock(&name("work"), PASS).unwrap();
    p.settings.display_name.push_str("-resaved");
    unlocked.vault_mut().save(&p).unwrap();
    drop(unlocked);

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: String, bytes: &[u8]| {
        for (i, form) in encodings(bytes).into_iter().enumerate() {
            needles.push((format!("{what} (form {i})"), form));
        }
    };
    add("passphrase".into(), PASS.as_bytes());
    add("intake seed".into(), &p.keys.intake_seed.0);
    add("endpoint seed".into(), &p.keys.endpoint_seed.0);
    add("static secret".into(), &p.keys.static_secret.0);
    add("display name".into(), p.settings.display_name.as_bytes());
    add(
        "custom network".into(),
        p.settings.custom_network.as_deref().unwrap().as_bytes(),
    );
    add(
        "download folder".into(),
        p.settings.download_folder.as_deref().unwrap().as_bytes(),
    );
    for k in p.blocked.iter().chain(&p.rejected) {
        add("blocked/rejected key".into(), &k.0);
    }
    for b in &p.blocked_names {
        add("blocked name".into(), b.nickname.as_bytes());
    }
    for c in &p.contacts {
        let id = allium_protocol::address::OnionId::from_bytes(c.intake.0).unwrap();
        add(format!("address of {:?}", c.id), id.to_address().as_bytes());
        add(
            format!("onion id of {:?}", c.id),
            id.to_onion_id_string().as_bytes(),
        );
        add(format!("intake key of {:?}", c.id), &c.intake.0);
        add(format!("nickname of {:?}", c.id), c.nickname.as_bytes());
        add(format!("greeting of {:?}", c.id), c.greeting.as_bytes());
        add(
            format!("our discovery key of {:?}", c.id),
            &c.our_discovery_key.0,
        );
        if !c.suggested_nickname.is_empty() {
            add(
                format!("suggested nickname of {:?}", c.id),
                c.suggested_nickname.as_bytes(),
            );
        }
        for key in [c.their_static, c.their_endpoint].into_iter().flatten() {
            add(format!("peer key of {:?}", c.id), &key.0);
        }
        if let Some(dk) = &c.their_discovery_key {
            add(format!("their discovery key of {:?}", c.id), &dk.0);
        }
        for m in &c.outbox {
            add(format!("queued message {}", m.id), m.text.as_bytes());
        }
        for h in &c.history {
            add(format!("history entry {}", h.id), h.text.as_bytes());
        }
    }
    // Our own addresses, derived from the seeds.
    for seed in [&p.keys.intake_seed.0, &p.keys.endpoint_seed.0] {
        let id = allium_protocol::identity::IdentityKey::from_seed(seed).onion_id();
        add("our address".into(), id.to_address().as_bytes());
        add("our onion id".into(), id.to_onion_id_string().as_bytes());
        add("our public key".into(), id.as_bytes());
    }
    // A partial match counts too: the first 12 characters of each text.
    let texts: Vec<(String, Vec<u8>)> = needles
        .iter()
        .filter(|(_, n)| n.len() > 12 && n.is_ascii())
        .map(|(w, n)| (format!("{w}, prefix"), n[..12].to_vec()))
        .collect();
    needles.extend(texts);

    let files = files_under(store.base_dir());
    assert!(
        files.iter().any(|f| f.ends_with("vault")),
        "the vault is among the files searched"
    );
    for file in &files {
        let content = fs::read(file).unwrap();
        for (what, needle) in &needles {
            assert!(
                !content
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{what} found in {file:?}"
            );
        }
    }
    // The check itself can fail: the same search finds them in the plaintext.
    let plain = serde_json::to_vec(&p).unwrap();
    let found = needles
        .iter()
        .filter(|(_, n)| plain.windows(n.len()).any(|w| w == n.as_slice()))
        .count();
    assert!(
        found > 20,
        "only {found} needles are in the plaintext: the search is broken"
    );
}
