//! JSON-RPC 2.0 framing: bounded lines in, requests parsed and checked,
//! responses and notifications out, and the error codes a client branches
//! on. Nothing here knows what a method does.

use std::io;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::app::AppError;
use crate::engine::EngineError;

/// Longest request line, in bytes without its newline. Longer lines are
/// refused and skipped without being held in memory.
pub const MAX_LINE: usize = 1 << 20;

/// Longest method name or parameter name echoed back in an error, so that
/// an error never grows with hostile input.
const MAX_ECHO: usize = 64;

/// What one read from the input gave.
pub(crate) enum Line {
    /// The input ended.
    Eof,
    /// A line (in the buffer), without its newline.
    Complete,
    /// A line longer than [`MAX_LINE`]; it was skipped.
    TooLong,
}

/// Reads one line into `buf`, holding at most [`MAX_LINE`] bytes of it.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            // A last line without a newline still counts as a line.
            return Ok(if too_long {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Complete
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                // Grow by doubling as usual, but never past the limit, so
                // that a line near the limit holds no more than it.
                let needed = buf.len() + chunk.len();
                if needed > buf.capacity() {
                    let target = needed.max(buf.capacity() * 2).min(MAX_LINE);
                    buf.reserve_exact(target - buf.len());
                }
                buf.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// A checked request.
pub(crate) struct Request {
    /// `None` for a notification (which gets no response).
    pub id: Option<Value>,
    pub method: String,
    pub params: Params,
}

/// Parses one line. On failure, returns the id to answer with (`null`
/// when it could not be read) and the error.
pub(crate) fn parse(line: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            Value::Null,
            RpcError::new(
                ErrorCode::ParseError,
                format!("the line is not valid JSON: {e}"),
            ),
        )
    })?;
    let mut object = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err((
                Value::Null,
                RpcError::new(
                    ErrorCode::BatchNotSupported,
                    "batches are not supported; send one request per line",
                ),
            ));
        }
        _ => {
            return Err((
                Value::Null,
                RpcError::invalid_request("a request must be a JSON object"),
            ));
        }
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::invalid_request("\"id\" must be a string, a number or null"),
            ));
        }
    };
    let answer_to = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err((
            answer_to,
            RpcError::invalid_request("\"jsonrpc\" must be \"2.0\""),
        ));
    }
    let method = match object.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            return Err((
                answer_to,
                RpcError::invalid_request("\"method\" must be a string"),
            ));
        }
    };
    let params = match object.remove("params") {
        // `null` is not a JSON-RPC params value, but clients send it for
        // "none"; refusing it would help nobody.
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(Value::Array(_)) => {
            return Err((
                answer_to,
                RpcError::new(
                    ErrorCode::InvalidParams,
                    "params must be given by name (an object), not by position",
                ),
            ));
        }
        Some(_) => {
            return Err((
                answer_to,
                RpcError::invalid_request("\"params\" must be an object"),
            ));
        }
    };
    Ok(Request {
        id,
        method,
        params: Params(params),
    })
}

/// A response line.
pub(crate) fn response(id: Value, result: Result<Value, RpcError>) -> String {
    let body = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    };
    body.to_string()
}

/// A notification line.
pub(crate) fn notification(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

/// A method's parameters, by name. Each accessor removes what it read, so
/// that [`Params::finish`] can refuse names the method does not know.
pub(crate) struct Params(Map<String, Value>);

impl Params {
    fn take(&mut self, name: &'static str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    fn missing(name: &'static str) -> RpcError {
        RpcError::invalid_param(name, format!("missing param \"{name}\""))
    }

    /// A required string.
    pub fn string(&mut self, name: &'static str) -> Result<String, RpcError> {
        self.opt_string(name)?.ok_or_else(|| Self::missing(name))
    }

    /// An optional string (absent or `null`: `None`).
    pub fn opt_string(&mut self, name: &'static str) -> Result<Option<String>, RpcError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RpcError::invalid_param(
                name,
                format!("\"{name}\" must be a string"),
            )),
        }
    }

    /// A required boolean.
    pub fn bool(&mut self, name: &'static str) -> Result<bool, RpcError> {
        self.opt_bool(name)?.ok_or_else(|| Self::missing(name))
    }

    /// An optional boolean (absent or `null`: `None`).
    pub fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, RpcError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(RpcError::invalid_param(
                name,
                format!("\"{name}\" must be true or false"),
            )),
        }
    }

    /// An optional whole number.
    pub fn opt_u64(&mut self, name: &'static str) -> Result<Option<u64>, RpcError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                RpcError::invalid_param(name, format!("\"{name}\" must be a whole number"))
            }),
            Some(_) => Err(RpcError::invalid_param(
                name,
                format!("\"{name}\" must be a whole number"),
            )),
        }
    }

    /// A required contact id.
    pub fn contact(&mut self, name: &'static str) -> Result<allium_vault::ContactId, RpcError> {
        let not_an_id = || {
            RpcError::invalid_param(
                name,
                format!("\"{name}\" must be a contact id (a whole number, as contacts.list gives)"),
            )
        };
        match self.take(name) {
            None => Err(Self::missing(name)),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(allium_vault::ContactId)
                .ok_or_else(not_an_id),
            Some(_) => Err(not_an_id()),
        }
    }

    /// Refuses any parameter the method did not read.
    pub fn finish(self) -> Result<(), RpcError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(name) => {
                let name = echo(name);
                Err(RpcError {
                    param: Some(name.clone()),
                    ..RpcError::new(
                        ErrorCode::InvalidParams,
                        format!("unknown param \"{name}\" for this method"),
                    )
                })
            }
        }
    }
}

/// At most [`MAX_ECHO`] characters of client text, for an error message.
pub(crate) fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// The stable error codes: a JSON-RPC number and a name (in
/// `error.data.code`). docs/json-rpc.md lists them; changing one breaks
/// clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    ParseError,
    InvalidRequest,
    LineTooLong,
    BatchNotSupported,
    NoSuchMethod,
    InvalidParams,
    Internal,
    NotOpen,
    AlreadyOpen,
    PassphraseUnreadable,
    App(&'static str),
    Engine(&'static str),
}

impl ErrorCode {
    /// The JSON-RPC `error.code`.
    pub fn number(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest | ErrorCode::LineTooLong | ErrorCode::BatchNotSupported => {
                -32600
            }
            ErrorCode::NoSuchMethod => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Internal => -32603,
            ErrorCode::NotOpen | ErrorCode::AlreadyOpen | ErrorCode::PassphraseUnreadable => -32001,
            ErrorCode::App(_) => -32002,
            ErrorCode::Engine(_) => -32003,
        }
    }

    /// The stable name in `error.data.code`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::BatchNotSupported => "batch_not_supported",
            ErrorCode::NoSuchMethod => "no_such_method",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::Internal => "internal",
            ErrorCode::NotOpen => "not_open",
            ErrorCode::AlreadyOpen => "already_open",
            ErrorCode::PassphraseUnreadable => "passphrase_unreadable",
            ErrorCode::App(name) | ErrorCode::Engine(name) => name,
        }
    }
}

/// The stable name of an engine error.
pub(crate) fn engine_code(e: &EngineError) -> &'static str {
    // Exhaustive on purpose: a new variant must be given a name here.
    match e {
        EngineError::BadAddress(_) => "bad_address",
        EngineError::OwnAddress => "own_address",
        EngineError::AlreadyContact => "already_contact",
        EngineError::Blocked => "blocked",
        EngineError::NoSuchContact => "no_such_contact",
        EngineError::NotBlocked => "not_blocked",
        EngineError::WrongState(_) => "wrong_state",
        EngineError::InvalidText(_) => "invalid_text",
        EngineError::InvalidSetting(_) => "invalid_setting",
        EngineError::TooManyContacts(_) => "too_many_contacts",
        EngineError::NoSuchTransfer => "no_such_transfer",
        EngineError::File(_) => "file",
        EngineError::Service(_) => "service",
        EngineError::Stopped => "stopped",
        EngineError::NotSaved(_) => "not_saved",
    }
}

/// An error response's content.
#[derive(Debug)]
pub(crate) struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    /// For invalid params: which one.
    pub param: Option<String>,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid_request(message: &str) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn invalid_param(param: &'static str, message: String) -> Self {
        RpcError {
            param: Some(param.to_owned()),
            ..Self::new(ErrorCode::InvalidParams, message)
        }
    }

    fn to_json(&self) -> Value {
        let mut data = json!({"code": self.code.name()});
        if let (Some(param), Value::Object(d)) = (&self.param, &mut data) {
            d.insert("param".into(), Value::String(param.clone()));
        }
        json!({"code": self.code.number(), "message": self.message, "data": data})
    }
}

impl From<AppError> for RpcError {
    fn from(e: AppError) -> Self {
        RpcError::new(ErrorCode::App(e.code()), e.to_string())
    }
}

impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> Self {
        RpcError::new(ErrorCode::Engine(engine_code(&e)), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_and_the_next_line_is_read() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\nlast");
        let mut reader = tokio::io::BufReader::with_capacity(1000, &input[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::TooLong
        ));
        assert!(buf.capacity() <= MAX_LINE);
        assert!(matches!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete
        ));
        assert_eq!(buf, b"next");
        assert!(matches!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete
        ));
        assert_eq!(buf, b"last");
        assert!(matches!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Eof
        ));
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_read() {
        let mut input = vec![b'x'; MAX_LINE];
        input.push(b'\n');
        let mut reader = tokio::io::BufReader::with_capacity(4096, &input[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete
        ));
        assert_eq!((buf.len(), buf.capacity()), (MAX_LINE, MAX_LINE));
    }

    #[test]
    fn requests_are_checked() {
        let err = |line: &str| parse(line.as_bytes()).err().unwrap();
        assert_eq!(err("{").1.code, ErrorCode::ParseError);
        assert_eq!(err("[]").1.code, ErrorCode::BatchNotSupported);
        assert_eq!(err("3").1.code, ErrorCode::InvalidRequest);
        let (id, e) = err(r#"{"jsonrpc":"1.0","id":7,"method":"status"}"#);
        assert_eq!((id, e.code), (json!(7), ErrorCode::InvalidRequest));
        let (id, e) = err(r#"{"jsonrpc":"2.0","id":"a","method":"status","params":[1]}"#);
        assert_eq!((id, e.code), (json!("a"), ErrorCode::InvalidParams));
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":{},"method":"status"}"#).1.code,
            ErrorCode::InvalidRequest
        );
        let r = parse(br#"{"jsonrpc":"2.0","method":"status"}"#).unwrap();
        assert!(r.id.is_none());
        let r = parse(br#"{"jsonrpc":"2.0","id":null,"method":"status"}"#).unwrap();
        assert_eq!(r.id, Some(Value::Null));
    }

    #[test]
    fn params_name_the_one_that_is_wrong() {
        let mut p = Params(
            json!({"contact": -1, "text": 3, "extra": true})
                .as_object()
                .unwrap()
                .clone(),
        );
        let e = p.contact("contact").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("contact"));
        let e = p.string("text").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("text"));
        let e = p.bool("enabled").unwrap_err();
        assert_eq!(e.message, "missing param \"enabled\"");
        let e = p.finish().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("extra"));
    }
}
