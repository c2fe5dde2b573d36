//! One virtual user's HTTP/1.1 connection, kept alive and re-opened after any failure, so
//! `--connections N` means exactly N TCP connections to the server.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum Failure {
    /// Connecting, sending or reading failed (server down, connection reset).
    Transport(String),
    /// No complete answer within the timeout; the connection is dropped.
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(why) => write!(f, "transport error: {why}"),
            Self::Timeout => f.write_str("timed out"),
        }
    }
}

/// An HTTP answer.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A request to send.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            token: None,
            body: None,
            idempotency_key: None,
        }
    }

    pub fn post(path: &'a str, body: &serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path,
            token: None,
            body: Some(body.to_string().into_bytes()),
            idempotency_key: None,
        }
    }

    pub fn bearer(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn idempotency_key(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// A keep-alive connection to `authority` (host:port).
pub struct Client {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(authority: &str) -> Self {
        Self {
            authority: authority.to_owned(),
            sender: None,
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        // small request/response pairs: Nagle would add tens of milliseconds
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let (sender, connection) = handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        tokio::spawn(async move {
            // ends with the connection; its errors surface on the next send
            let _ = connection.await;
        });
        Ok(sender)
    }

    async fn exchange(&mut self, call: Call<'_>) -> Result<Reply, Failure> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let mut request = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header(HOST, &self.authority);
        if let Some(token) = call.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if call.body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?
            .to_bytes();
        // only a connection that completed an exchange is reused
        self.sender = Some(sender);
        Ok(Reply { status, body })
    }

    /// Sends `call` and reads the whole answer, giving up after `timeout`. After a failure
    /// the connection is dropped and the next call opens a new one: an abandoned HTTP/1.1
    /// exchange leaves the stream unusable.
    pub async fn send(&mut self, call: Call<'_>, timeout: Duration) -> Result<Reply, Failure> {
        match tokio::time::timeout(timeout, self.exchange(call)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                self.sender = None;
                Err(Failure::Timeout)
            }
        }
    }
}
