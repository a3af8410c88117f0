//! The measured side: one listener, the variant's connection handling, dhat around it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use accessgate::body::Body;
use accessgate::config::ListenConfig;
use accessgate::transport::server::{self, ServerSettings, Shutdown};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// The shipped `[listen]` defaults (docs/configuration.md).
fn listen(cert: std::path::PathBuf, key: std::path::PathBuf) -> ListenConfig {
    ListenConfig {
        address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_cert: cert,
        tls_key: key,
        client_ca: None,
        handshake_timeout: Duration::from_secs(10),
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 100_000,
        max_header_bytes: 16384,
        trusted_proxies: Vec::new(),
        h2_max_concurrent_streams: 256,
    }
}

/// One h2 setting changed on top of the shipped h2 builder (`h2:SETTING=VALUE`).
fn apply(
    b: &mut hyper::server::conn::http2::Builder<TokioExecutor>,
    kv: &str,
) -> Result<(), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("{kv}: want SETTING=VALUE"))?;
    if k == "keep_alive" {
        b.keep_alive_interval(None);
        return Ok(());
    }
    let n: u32 = v.parse().map_err(|e| format!("{kv}: {e}"))?;
    match k {
        "header_table_size" => b.header_table_size(n),
        "max_frame_size" => b.max_frame_size(n),
        "max_concurrent_streams" => b.max_concurrent_streams(n),
        "max_send_buf_size" => b.max_send_buf_size(n as usize),
        "initial_stream_window_size" => b.initial_stream_window_size(n),
        "initial_connection_window_size" => b.initial_connection_window_size(n),
        "max_header_list_size" => b.max_header_list_size(n),
        _ => return Err(format!("{k}: unknown setting")),
    };
    Ok(())
}

/// How the non-`full` variants serve a connection after the handshake.
enum Serve {
    /// Hold the TLS stream, no HTTP.
    Tls,
    /// hyper-util's auto builder (what connections without ALPN get).
    Auto(hyper_util::server::conn::auto::Builder<TokioExecutor>),
    /// hyper's h1 builder, never parked.
    H1(hyper::server::conn::http1::Builder),
    /// hyper's h2 builder (what `h2` connections get).
    H2(hyper::server::conn::http2::Builder<TokioExecutor>),
}

fn serve_for(variant: &str, settings: &ServerSettings) -> Result<Serve, String> {
    Ok(match variant {
        "tls" => Serve::Tls,
        "auto-h2" | "auto-h1" => Serve::Auto(server::http_builder(settings)),
        "h1" => Serve::H1(server::http1_builder(settings)),
        _ => {
            let mut b = server::http2_builder(settings);
            if let Some(kv) = variant.strip_prefix("h2:") {
                apply(&mut b, kv)?;
            } else if variant != "h2" {
                return Err(format!("{variant}: unknown variant"));
            }
            Serve::H2(b)
        }
    })
}

pub fn main() -> Result<(), String> {
    let variant = std::env::var("CONN_MEMORY_VARIANT").map_err(|e| e.to_string())?;
    let n = super::env_n();
    let out =
        std::path::PathBuf::from(std::env::var_os("CONN_MEMORY_OUT").ok_or("CONN_MEMORY_OUT")?);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_path, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
    accessgate::transport::tls::install_provider();
    let cfg = listen(cert_path.clone(), key_path);
    let tls = accessgate::transport::tls::server_config(&cfg).map_err(|e| e.to_string())?;
    let settings = ServerSettings::from(&cfg);

    let file = out.join(format!(
        "dhat-conn-{}.json",
        variant.replace([':', '='], "-")
    ));
    let profiler = dhat::Profiler::builder()
        .file_name(&file)
        .trim_backtraces(Some(40))
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (measure_tx, measure_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = measure_tx.send(());
    });
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let (_drain_tx, drain) = tokio::sync::watch::channel(false);
        let (_kill_tx, kill) = tokio::sync::watch::channel(false);
        if variant.starts_with("full-") {
            let stack = tower::service_fn(|_req: Request<Body>| {
                std::future::ready(Ok::<_, Infallible>(Response::new(Body::full("ok"))))
            });
            let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
            let metrics = accessgate::ops::metrics::Metrics::new();
            let tls = Arc::new(arc_swap::ArcSwap::new(tls));
            tokio::spawn(server::run(
                listener,
                tls,
                settings,
                stack,
                metrics,
                0,
                permits,
                Shutdown { drain, kill },
            ));
        } else {
            let serve = Arc::new(serve_for(&variant, &settings)?);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let serve = serve.clone();
                    tokio::spawn(async move {
                        let Ok(s) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let svc = hyper::service::service_fn(|_req| async {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        });
                        let io = TokioIo::new(s);
                        let _ = match &*serve {
                            Serve::Tls => {
                                let mut s = io.into_inner();
                                let mut b = [0u8; 1];
                                let _ = s.read(&mut b).await;
                                return;
                            }
                            Serve::Auto(b) => b
                                .serve_connection_with_upgrades(io, svc)
                                .await
                                .map_err(|e| e.to_string()),
                            Serve::H1(b) => {
                                b.serve_connection(io, svc).await.map_err(|e| e.to_string())
                            }
                            Serve::H2(b) => {
                                b.serve_connection(io, svc).await.map_err(|e| e.to_string())
                            }
                        };
                    });
                }
            });
        }
        // Let the runtime's lazily built parts (timer wheel, I/O driver) settle first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = dhat::HeapStats::get();
        println!("listening {port} {}", cert_path.display());
        let _ = measure_rx.await;
        // Idle means idle: let the last responses' buffers be released, and the last
        // HTTP/1.1 connections be parked (after one quiet watchdog tick, at most 1 s).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let after = dhat::HeapStats::get();
        drop(profiler);
        let sites = super::sites::from_profile(&file, n)?;
        let per = |a: usize, b: usize| (a as f64 - b as f64) / n as f64;
        let r = serde_json::json!({
            "variant": variant,
            "n": n,
            "bytes_per_conn": per(after.curr_bytes, before.curr_bytes),
            "blocks_per_conn": per(after.curr_blocks, before.curr_blocks),
            "sites": sites,
        });
        println!("{r}");
        Ok::<(), String>(())
    })?;
    std::process::exit(0);
}
