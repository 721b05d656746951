//! `serve-ws` (a WebSocket echo server) and `ws-echo URL TEXT` (connect,
//! send one text message, print the one that comes back), with the sync
//! `tungstenite`: a WebSocket through two sidecars needs the HTTP/1.1
//! Upgrade to pass both, and then both directions spliced.

use std::net::TcpListener;
use std::time::Duration;

use mesh_e2e::http;
use tungstenite::Message;

use crate::Result;

/// Echoes every text and binary message back until the peer closes.
pub fn serve_ws(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    eprintln!("listening on {listen} (websocket)");
    for stream in listener.incoming().flatten() {
        if let Ok(peer) = stream.peer_addr() {
            eprintln!("connection from {peer}");
        }
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let mut ws = match tungstenite::accept(stream) {
                Ok(ws) => ws,
                Err(e) => return eprintln!("websocket handshake: {e}"),
            };
            eprintln!("websocket upgraded");
            loop {
                match ws.read() {
                    Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                        if let Err(e) = ws.send(m) {
                            return eprintln!("websocket send: {e}");
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
    Ok(())
}

/// Sends `text` over a WebSocket to `url` (`ws://HOST:PORT/PATH`) and
/// prints the first text message received (the echo).
pub fn ws_echo(url: &str, text: &str, timeout: Duration) -> Result<()> {
    let (authority, _) = http::split_url(url)?;
    let (host, port) = http::authority_addr(authority)?;
    let stream = http::connect(&host, port, timeout)?;
    let io = |e: std::io::Error| format!("{url}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let (mut ws, response) =
        tungstenite::client(url, stream).map_err(|e| format!("websocket handshake: {e}"))?;
    eprintln!("handshake answered {}", response.status());
    ws.send(Message::text(text))
        .map_err(|e| format!("websocket send: {e}"))?;
    loop {
        match ws.read().map_err(|e| format!("websocket read: {e}"))? {
            Message::Text(t) => {
                println!("{}", t.as_str());
                let _ = ws.close(None);
                return Ok(());
            }
            Message::Binary(b) => {
                println!("{}", String::from_utf8_lossy(&b));
                return Ok(());
            }
            Message::Close(_) => return Err("closed before the echo".into()),
            _ => {}
        }
    }
}
