//! The postcard apps as real processes, without a mesh: greeter shows
//! messenger's text, and still renders a card (with the reason) when
//! messenger is gone.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").to_string()
}

fn start(bin: &str, listen: &str, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(bin);
    cmd.env("LISTEN", listen)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running(cmd.spawn().expect("start app"))
}

/// GET `url` until it answers (bounded to 10 s); the status and body.
async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(url).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                return (status, resp.text().await.unwrap_or_default());
            }
            Err(e) if Instant::now() > deadline => panic!("{url} never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn greeter_shows_messenger_text_and_survives_its_absence() {
    let messenger_addr = free_addr();
    let greeter_addr = free_addr();
    let text = "A postcard from the apps test <3";
    let messenger = start(
        env!("CARGO_BIN_EXE_messenger"),
        &messenger_addr,
        &[("MESSAGE_TEXT", text)],
    );
    let messenger_url = format!("http://{messenger_addr}/message");
    let _greeter = start(
        env!("CARGO_BIN_EXE_greeter"),
        &greeter_addr,
        &[("MESSENGER_URL", &messenger_url)],
    );

    let (status, body) = get(&format!("http://{messenger_addr}/message")).await;
    assert_eq!((status, body.as_str()), (200, text));

    let (status, card) = get(&format!("http://{greeter_addr}/")).await;
    assert_eq!(status, 200);
    assert!(
        card.contains("A postcard from the apps test &lt;3"),
        "card lacks the escaped message: {card}"
    );
    assert!(!card.contains("no message"), "{card}");

    drop(messenger);
    let (status, card) = get(&format!("http://{greeter_addr}/")).await;
    assert_eq!(status, 200, "greeter must still render the card");
    assert!(
        card.contains("no message: messenger is unavailable"),
        "card lacks the failure line: {card}"
    );
}
