//! The methods on an open profile, one function each, and the table that
//! names them (`METHODS`, in the order of `docs/json-rpc.md`). Each reads
//! its parameters first (so a malformed call is refused as such, open
//! profile or not), then asks the engine, then says what came back. The
//! profile methods (`profile.*`) and `shutdown` are in `session.rs`: they
//! change what the session holds.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::session::{Client, to_json, tor_json};
use super::wire::{Params, RpcError};

type Answer = Result<Value, RpcError>;

/// A method: what it reads from the client and its parameters.
pub(super) type Method = for<'a> fn(&'a Client, Params) -> BoxFuture<'a, Answer>;

/// Every method on an open profile, by name.
pub(super) const METHODS: &[(&str, Method)] = &[
    ("status", |c, p| Box::pin(status(c, p))),
    ("tor.retry", |c, p| Box::pin(tor_retry(c, p))),
    ("display_name.set", |c, p| Box::pin(display_name_set(c, p))),
    ("intake.set", |c, p| Box::pin(intake_set(c, p))),
    ("contacts.add", |c, p| Box::pin(contacts_add(c, p))),
    ("contacts.list", |c, p| Box::pin(contacts_list(c, p))),
    ("contacts.accept", |c, p| Box::pin(contacts_accept(c, p))),
    ("contacts.reject", |c, p| Box::pin(contacts_reject(c, p))),
    ("contacts.block", |c, p| Box::pin(contacts_block(c, p))),
    ("contacts.remove", |c, p| Box::pin(contacts_remove(c, p))),
    ("contacts.rename", |c, p| Box::pin(contacts_rename(c, p))),
    ("contacts.verify", |c, p| Box::pin(contacts_verify(c, p))),
    ("contacts.blocked", |c, p| Box::pin(contacts_blocked(c, p))),
    ("contacts.unblock", |c, p| Box::pin(contacts_unblock(c, p))),
    ("messages.send", |c, p| Box::pin(messages_send(c, p))),
    ("history.get", |c, p| Box::pin(history_get(c, p))),
    ("history.set", |c, p| Box::pin(history_set(c, p))),
    ("files.send", |c, p| Box::pin(files_send(c, p))),
    ("files.accept", |c, p| Box::pin(files_accept(c, p))),
    ("files.cancel", |c, p| Box::pin(files_cancel(c, p))),
    ("files.list", |c, p| Box::pin(files_list(c, p))),
];

/// The method called `name`, if there is one.
pub(super) fn find(name: &str) -> Option<Method> {
    METHODS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, method)| *method)
}

async fn status(c: &Client, p: Params) -> Answer {
    p.finish()?;
    let open = c.profile()?;
    let s = open.handle.status().await?;
    let tor = tor_json(&open.tor.borrow());
    Ok(json!({
        "profile": open.name,
        "amnesic": open.name.is_none(),
        "address": s.address,
        "intake_enabled": s.intake.is_some(),
        "intake": s.intake,
        "endpoint": s.endpoint,
        "save_error": s.save_error,
        "tor": tor,
    }))
}

async fn tor_retry(c: &Client, p: Params) -> Answer {
    p.finish()?;
    c.profile()?.control.retry_tor();
    Ok(Value::Null)
}

async fn display_name_set(c: &Client, mut p: Params) -> Answer {
    let name = p.string("name")?;
    p.finish()?;
    c.profile()?.handle.set_display_name(&name).await?;
    Ok(Value::Null)
}

async fn intake_set(c: &Client, mut p: Params) -> Answer {
    let enabled = p.bool("enabled")?;
    p.finish()?;
    c.profile()?.handle.set_intake(enabled).await?;
    Ok(Value::Null)
}

async fn contacts_list(c: &Client, p: Params) -> Answer {
    p.finish()?;
    let contacts = c.profile()?.handle.contacts().await?;
    Ok(json!({"contacts": to_json(&contacts)?}))
}

async fn contacts_add(c: &Client, mut p: Params) -> Answer {
    let address = p.string("address")?;
    let nickname = p.opt_string("nickname")?.unwrap_or_default();
    let greeting = p.opt_string("greeting")?.unwrap_or_default();
    p.finish()?;
    let h = &c.profile()?.handle;
    let id = h.add_contact(&address, &nickname, &greeting).await?;
    Ok(json!({"contact": id}))
}

async fn contacts_accept(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let nickname = p.opt_string("nickname")?;
    p.finish()?;
    let h = &c.profile()?.handle;
    h.accept(contact, nickname.as_deref()).await?;
    Ok(Value::Null)
}

async fn contacts_reject(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    p.finish()?;
    c.profile()?.handle.reject(contact).await?;
    Ok(Value::Null)
}

async fn contacts_block(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    p.finish()?;
    c.profile()?.handle.block(contact).await?;
    Ok(Value::Null)
}

async fn contacts_remove(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    p.finish()?;
    c.profile()?.handle.remove(contact).await?;
    Ok(Value::Null)
}

async fn contacts_rename(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let nickname = p.string("nickname")?;
    p.finish()?;
    c.profile()?.handle.rename(contact, &nickname).await?;
    Ok(Value::Null)
}

async fn contacts_verify(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let verified = p.bool("verified")?;
    p.finish()?;
    let h = &c.profile()?.handle;
    h.set_verified(contact, verified).await?;
    Ok(Value::Null)
}

async fn contacts_blocked(c: &Client, p: Params) -> Answer {
    p.finish()?;
    let blocked = c.profile()?.handle.blocked().await?;
    Ok(json!({"blocked": to_json(&blocked)?}))
}

async fn contacts_unblock(c: &Client, mut p: Params) -> Answer {
    let address = p.string("address")?;
    p.finish()?;
    c.profile()?.handle.unblock(&address).await?;
    Ok(Value::Null)
}

async fn messages_send(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let text = p.string("text")?;
    p.finish()?;
    let id = c.profile()?.handle.send_message(contact, &text).await?;
    Ok(json!({"id": id}))
}

async fn history_get(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    p.finish()?;
    let messages = c.profile()?.handle.conversation(contact).await?;
    Ok(json!({"messages": to_json(&messages)?}))
}

async fn history_set(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let enabled = p.bool("enabled")?;
    p.finish()?;
    c.profile()?.handle.set_history(contact, enabled).await?;
    Ok(Value::Null)
}

async fn files_send(c: &Client, mut p: Params) -> Answer {
    let contact = p.contact("contact")?;
    let path = p.string("path")?;
    p.finish()?;
    let transfer = c.profile()?.handle.send_file(contact, path).await?;
    Ok(json!({"transfer": transfer}))
}

async fn files_accept(c: &Client, mut p: Params) -> Answer {
    let transfer = p.string("transfer")?;
    let folder = p.string("folder")?;
    p.finish()?;
    c.profile()?.handle.accept_file(&transfer, folder).await?;
    Ok(Value::Null)
}

async fn files_cancel(c: &Client, mut p: Params) -> Answer {
    let transfer = p.string("transfer")?;
    p.finish()?;
    c.profile()?.handle.cancel_file(&transfer).await?;
    Ok(Value::Null)
}

async fn files_list(c: &Client, p: Params) -> Answer {
    p.finish()?;
    let transfers = c.profile()?.handle.transfers().await?;
    Ok(json!({"transfers": to_json(&transfers)?}))
}

#[cfg(test)]
mod tests {
    use super::METHODS;

    /// The table and the client's reference name the same methods: one
    /// cannot be added without the other.
    #[test]
    fn the_table_is_the_documented_list_of_methods() {
        let doc = include_str!("../../docs/json-rpc.md");
        let methods = doc
            .split("## Methods")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a Methods section");
        // Rows of its table: | `name` | parameters | result |
        let documented: Vec<&str> = methods
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .filter(|name| !name.starts_with("profile.") && *name != "shutdown")
            .collect();
        let table: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
        assert_eq!(table, documented, "METHODS and docs/json-rpc.md differ");
    }
}
