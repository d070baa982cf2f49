//! A TCP relay in front of a service that keeps a copy of every byte sent to it: the headers
//! a caller really wrote, for what the spans cannot show (a `tracestate` key that
//! opentelemetry's `TraceState` cannot hold; the flags of a call that has no span).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

pub struct WireTap {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl WireTap {
    /// Relays every connection made to [`WireTap::url`] to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the wire tap on 127.0.0.1");
        let addr = listener.local_addr().expect("the tap's address");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay(inbound, upstream, Arc::clone(&recorded)));
            }
        });
        Self { addr, sent, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every value of header `name` in the requests relayed so far, in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let sent = self.sent.lock().expect("tap buffer");
        String::from_utf8_lossy(&sent)
            .split("\r\n")
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim_matches([' ', '\t']).to_owned())
            })
            .collect()
    }
}

impl Drop for WireTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut inbound: TcpStream, upstream: SocketAddr, sent: Arc<Mutex<Vec<u8>>>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_caller, mut to_caller) = inbound.split();
    let (mut from_service, mut to_service) = outbound.split();
    let forward = async {
        let mut buf = [0_u8; 8192];
        loop {
            match from_caller.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sent.lock()
                        .expect("tap buffer")
                        .extend_from_slice(&buf[..n]);
                    if to_service.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_service.shutdown().await;
    };
    let back = async {
        let _ = tokio::io::copy(&mut from_service, &mut to_caller).await;
        let _ = to_caller.shutdown().await;
    };
    tokio::join!(forward, back);
}
