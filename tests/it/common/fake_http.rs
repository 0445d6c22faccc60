//! A scripted HTTP/1.1 server on 127.0.0.1 for the fakes of streaming APIs: each request is answered by a
//! closure with a plain response or a chunked stream whose steps can pause, and can drop the connection
//! mid-chunk the way a broken network does (no terminating chunk, so the client sees an error, not an end).
//! wiremock serves whole bodies only, which cannot show a keep-alive, a silence or a cut line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: std::time::Instant,
}

impl Req {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

pub enum Step {
    /// One chunk.
    Send(Vec<u8>),
    Pause(Duration),
    /// Close the socket without the terminating chunk.
    Drop,
}

pub enum Reply {
    Plain {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Stream(Vec<Step>),
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Plain {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Plain { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }
}

/// A line of a stream: the text and X's `\r\n`.
pub fn line(s: &str) -> Step {
    Step::Send(format!("{s}\r\n").into_bytes())
}

pub struct FakeHttp {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Req>>>,
}

impl FakeHttp {
    pub fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                let log = log.clone();
                std::thread::spawn(move || serve(conn, &*handler, &log));
            }
        });
        FakeHttp { url, requests }
    }

    pub fn requests_to(&self, path: &str) -> Vec<Req> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve(conn: TcpStream, handler: &dyn Fn(&Req) -> Reply, log: &Mutex<Vec<Req>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        log.lock().unwrap().push(req.clone());
        let mut w = conn.try_clone().unwrap();
        match handler(&req) {
            Reply::Plain {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if w.write_all(head.as_bytes())
                    .and_then(|_| w.write_all(body.as_bytes()))
                    .is_err()
                {
                    return;
                }
            }
            Reply::Stream(steps) => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for s in steps {
                    match s {
                        Step::Send(b) => {
                            let mut chunk = format!("{:x}\r\n", b.len()).into_bytes();
                            chunk.extend_from_slice(&b);
                            chunk.extend_from_slice(b"\r\n");
                            if w.write_all(&chunk).and_then(|_| w.flush()).is_err() {
                                return;
                            }
                        }
                        Step::Pause(d) => std::thread::sleep(d),
                        Step::Drop => {
                            let _ = w.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                }
                let _ = w.write_all(b"0\r\n\r\n");
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let url = reqwest::Url::parse(&format!("http://x{target}")).ok()?;
    Some(Req {
        method,
        path: url.path().to_string(),
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: std::time::Instant::now(),
    })
}
