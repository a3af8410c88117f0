//! (5) Raw HTTP/1.1 request heads over TLS to a running gateway: randomly mutated
//! Content-Length / Transfer-Encoding combinations, bad chunk sizes, obsolete line folding,
//! NULs, bare LFs and stray bytes. The gateway answers or closes within a bound, keeps
//! serving, and never forwards a request whose head had both framing headers.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;

use crate::support::*;

#[derive(Debug, Clone)]
enum HeadMut {
    SetCl(&'static str),
    AddCl(&'static str),
    SetTe(&'static str),
    AddTe(&'static str),
    RemoveCl,
    RemoveTe,
    Body(&'static str),
    ObsFold(Index),
    SpaceBeforeColon(Index),
}

#[derive(Debug, Clone)]
enum RawMut {
    Nul(Index),
    BareLf(Index),
    Byte(Index, u8),
}

const CL_VALUES: [&str; 13] = [
    "5",
    "0",
    "6",
    "4",
    "-1",
    "+5",
    "5, 5",
    "5,6",
    " 5",
    "0x5",
    "99999999999999999999",
    "",
    "5\t",
];
const TE_VALUES: [&str; 13] = [
    "chunked",
    "Chunked",
    "CHUNKED",
    "chunked, identity",
    "identity, chunked",
    "gzip, chunked",
    "identity",
    " chunked",
    "xchunked",
    "chunked;q=1",
    "\tchunked",
    "",
    "chunked, chunked",
];
const BODIES: [&str; 13] = [
    "hello",
    "5\r\nhello\r\n0\r\n\r\n",
    "zz\r\nhello\r\n0\r\n\r\n",
    "-5\r\nhello\r\n0\r\n\r\n",
    "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "5;ext=\"x\r\nhello\r\n0\r\n\r\n",
    "5\r\nhelloXX0\r\n\r\n",
    "5\nhello\n0\n\n",
    "0\r\n\r\nGET /case-{n}/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "",
    "3\r\nhello\r\n0\r\n\r\n",
    "0\r\nTrailer: x\r\n\r\n",
    "5 \r\nhello\r\n0\r\n\r\n",
];

fn raw_case() -> impl Strategy<Value = (usize, Vec<HeadMut>, Vec<RawMut>)> {
    let head = prop_oneof![
        select(CL_VALUES.to_vec()).prop_map(HeadMut::SetCl),
        select(CL_VALUES.to_vec()).prop_map(HeadMut::AddCl),
        select(TE_VALUES.to_vec()).prop_map(HeadMut::SetTe),
        select(TE_VALUES.to_vec()).prop_map(HeadMut::AddTe),
        Just(HeadMut::RemoveCl),
        Just(HeadMut::RemoveTe),
        select(BODIES.to_vec()).prop_map(HeadMut::Body),
        any::<Index>().prop_map(HeadMut::ObsFold),
        any::<Index>().prop_map(HeadMut::SpaceBeforeColon),
    ];
    let raw = prop_oneof![
        any::<Index>().prop_map(RawMut::Nul),
        any::<Index>().prop_map(RawMut::BareLf),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| RawMut::Byte(i, b)),
    ];
    (
        0..4usize,
        prop::collection::vec(head, 1..4),
        prop::collection::vec(raw, 0..2),
    )
}

/// Build request `n` from template `t` and the mutations.
fn raw_request(n: usize, t: usize, heads: &[HeadMut], raws: &[RawMut]) -> Vec<u8> {
    let (method, mut headers, mut body): (&str, Vec<String>, String) = match t {
        0 => ("GET", vec![], String::new()),
        1 => ("POST", vec!["Content-Length: 5".into()], "hello".into()),
        2 => (
            "POST",
            vec!["Transfer-Encoding: chunked".into()],
            BODIES[1].into(),
        ),
        _ => (
            "POST",
            vec![
                "Content-Length: 5".into(),
                "Transfer-Encoding: chunked".into(),
            ],
            BODIES[1].into(),
        ),
    };
    headers.insert(0, "Host: localhost".into());
    let is = |l: &str, name: &str| l.to_ascii_lowercase().starts_with(name);
    for m in heads {
        match m {
            HeadMut::SetCl(v) => {
                headers.retain(|l| !is(l, "content-length:"));
                headers.push(format!("Content-Length: {v}"));
            }
            HeadMut::AddCl(v) => headers.push(format!("Content-Length: {v}")),
            HeadMut::SetTe(v) => {
                headers.retain(|l| !is(l, "transfer-encoding:"));
                headers.push(format!("Transfer-Encoding: {v}"));
            }
            HeadMut::AddTe(v) => headers.push(format!("Transfer-Encoding: {v}")),
            HeadMut::RemoveCl => headers.retain(|l| !is(l, "content-length:")),
            HeadMut::RemoveTe => headers.retain(|l| !is(l, "transfer-encoding:")),
            HeadMut::Body(b) => body = b.replace("{n}", &n.to_string()),
            HeadMut::ObsFold(i) => {
                let at = i.index(headers.len());
                if let Some((k, v)) = headers[at].clone().split_once(':') {
                    headers[at] = format!("{k}:\r\n {}", v.trim_start());
                }
            }
            HeadMut::SpaceBeforeColon(i) => {
                let at = i.index(headers.len());
                headers[at] = headers[at].replacen(':', " :", 1);
            }
        }
    }
    let head = format!(
        "{method} /case-{n}/x HTTP/1.1\r\n{}\r\n\r\n",
        headers.join("\r\n")
    );
    let mut head = head.into_bytes();
    for m in raws {
        match *m {
            RawMut::Nul(i) => head.insert(i.index(head.len()), 0),
            RawMut::BareLf(i) => {
                let crs: Vec<usize> = (0..head.len()).filter(|&j| head[j] == b'\r').collect();
                if !crs.is_empty() {
                    head.remove(crs[i.index(crs.len())]);
                }
            }
            RawMut::Byte(i, b) => {
                let at = i.index(head.len());
                head[at] = b;
            }
        }
    }
    head.extend_from_slice(body.as_bytes());
    head
}

/// Whether any line of `raw` (leniently: any case, whitespace around the name) is a
/// Content-Length and any is a Transfer-Encoding header.
fn has_cl_and_te(raw: &[u8]) -> bool {
    let mut cl = false;
    let mut te = false;
    for line in raw.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        cl |= name == "content-length";
        te |= name == "transfer-encoding";
    }
    cl && te
}

/// Read until a full response head or EOF, within `limit`. `None` means it hung.
async fn answer_or_close<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    limit: Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.starts_with(b"HTTP/1.") && buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(buf),
            Ok(Ok(k)) => buf.extend_from_slice(&chunk[..k]),
            Err(_) => return None,
        }
    }
}

/// What one run of the mutated cases saw.
struct RawRun {
    /// Each case's bytes and the first line of the answer ("" when the gateway closed).
    cases: Vec<(Vec<u8>, String)>,
    /// Cases whose bytes carried both Content-Length and Transfer-Encoding.
    both: Vec<usize>,
    /// Everything the upstream received.
    received: Vec<Recorded>,
}

/// Send 32 mutated requests (a fixed sequence), one per connection, each bounded; panic if
/// one hangs or if the gateway no longer serves a plain request afterwards.
async fn run_raw_cases() -> RawRun {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    // header_read_timeout and request_timeout are 1s, idle_timeout far longer: every case
    // is over well within the 10s bound below unless something stops applying a timeout.
    let config = PLAIN_CONFIG
        .replace("request_timeout = \"2s\"", "request_timeout = \"1s\"")
        .replace("idle_timeout = \"5s\"", "idle_timeout = \"60s\"");
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let mut picker = TestRunner::deterministic();
    let strategy = raw_case();
    let mut run = RawRun {
        cases: Vec::new(),
        both: Vec::new(),
        received: Vec::new(),
    };
    for n in 0..32 {
        let (t, heads, raws) = strategy.new_tree(&mut picker).unwrap().current();
        let raw = raw_request(n, t, &heads, &raws);
        if has_cl_and_te(&raw) {
            run.both.push(n);
        }
        let mut io = raw_tls(gw.addr, &gw.ca()).await;
        // The gateway may refuse and close before reading everything: that is fine.
        let _ = io.write_all(&raw).await;
        let _ = io.flush().await;
        let Some(got) = answer_or_close(&mut io, Duration::from_secs(10)).await else {
            panic!("case {n} hung: {:?}", String::from_utf8_lossy(&raw));
        };
        let first = String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        if !first.is_empty() {
            let status = first.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok());
            assert!(
                status.is_some_and(|s| (100..600).contains(&s)),
                "case {n}: not an HTTP answer: {first:?}"
            );
        }
        run.cases.push((raw, first));
    }
    // Still serving.
    let c = client(&gw.ca(), false);
    let (parts, _) = send(&c, get(&gw.url("/after"), &[])).await;
    assert_eq!(parts.status, 200, "the gateway stopped serving");
    assert_eq!(up.requests().last().unwrap().uri.path(), "/after");
    run.received = up.requests();
    gw.shutdown().await;
    run
}

#[tokio::test]
async fn mutated_request_heads_never_hang_or_crash() {
    let run = run_raw_cases().await;
    // Some cases must get through and some must be refused, or the mutations test nothing.
    let answered = |code: &str| run.cases.iter().filter(|(_, f)| f.contains(code)).count();
    assert!(
        answered(" 200 ") > 0 && answered(" 400 ") > 0,
        "{:?}",
        run.cases
    );
    for r in &run.received {
        assert!(
            !(r.headers.contains_key("content-length")
                && r.headers.contains_key("transfer-encoding")),
            "upstream got Content-Length and Transfer-Encoding: {r:?}"
        );
    }
}

#[tokio::test]
async fn mutated_request_heads_with_both_framing_headers_are_never_forwarded() {
    let run = run_raw_cases().await;
    for n in &run.both {
        let (raw, first) = &run.cases[*n];
        let forwarded: Vec<_> = run
            .received
            .iter()
            .filter(|r| r.uri.path().starts_with(&format!("/case-{n}/")))
            .collect();
        assert!(
            forwarded.is_empty(),
            "case {n} had Content-Length and Transfer-Encoding, got {first:?} and was forwarded: \
             {:?}\n{forwarded:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// The minimal form of what the mutations found: hyper ignores a Content-Length that comes
/// after Transfer-Encoding (RFC 9112 6.3: chunked wins), so it never validates its value;
/// the smuggling guard must refuse the pair even when the length is not a plain number.
#[tokio::test]
async fn content_length_after_transfer_encoding_is_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    for cl in ["+5", "5, 5", "abc", "-1", "0x5", "99999999999999999999999"] {
        let raw = format!(
            "POST /smuggle HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
             Content-Length: {cl}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes()).await;
        let status = resp.map(|r| r.status);
        assert!(
            status.is_none() || status == Some(400),
            "Content-Length: {cl:?} after Transfer-Encoding: got {status:?}"
        );
    }
    assert_eq!(
        up.count(),
        0,
        "CL+TE reached the upstream: {:?}",
        up.requests()
    );
    gw.shutdown().await;
}

/// An unfinished request head must be dropped after `header_read_timeout`. The smuggling
/// guard stops following the stream at a line it expects hyper to refuse (no colon, obsolete
/// line folding, a Content-Length that is not a number), and from then on no head counts as
/// pending, so only `idle_timeout` (and hyper's backstop at the larger of the two) ends the
/// connection: a slow-loris client holds it for `idle_timeout` instead of
/// `header_read_timeout`.
#[tokio::test]
async fn unfinished_head_with_a_malformed_line_is_dropped_after_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start().await;
    let config = PLAIN_CONFIG.replace("idle_timeout = \"5s\"", "idle_timeout = \"60s\"");
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let shapes: [&[u8]; 4] = [
        b"GET /a HTTP/1.1\r\nHost: localhost\r\n\0\r\n",
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nX\r\n",
        b"GET /a HTTP/1.1\r\nHost: localhost\r\n folded\r\n",
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n",
    ];
    let (addr, ca) = (gw.addr, gw.ca());
    let probes = shapes.map(|raw| {
        let ca = ca.clone();
        tokio::spawn(async move {
            let mut io = raw_tls(addr, &ca).await;
            io.write_all(raw).await.unwrap();
            // header_read_timeout is 1s: 15s is a wide margin, far below idle_timeout.
            let (_, eof) = read_until_close(&mut io, Duration::from_secs(15)).await;
            (raw, eof)
        })
    });
    for p in probes {
        let (raw, eof) = p.await.unwrap();
        assert!(
            eof,
            "{:?} kept the connection past header_read_timeout",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}
