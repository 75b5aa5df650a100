//! A TCP proxy a test can cut: every connection through it is closed at once and new ones are
//! refused, as a network partition between one node and a service would.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Cuttable {
    pub port: u16,
    cut: Arc<watch::Sender<bool>>,
}

impl Cuttable {
    /// Starts forwarding a free port on 127.0.0.1 to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(watch::Sender::new(false));
        let (upstream, cut_signal) = (upstream.to_owned(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cut_signal.subscribe();
                if *cut.borrow_and_update() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Cuttable { port, cut }
    }

    /// Closes every connection and refuses new ones until [`Cuttable::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}
