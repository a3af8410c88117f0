//! Whose fault a failed upstream exchange is, read from where the error came from.
//!
//! The pooled client reports one error for anything that goes wrong while it sends a
//! request, including the *client's* request body failing mid-stream (a bad chunk line,
//! a body shorter than its `Content-Length`, a reset). hyper marks that case as an error of
//! the user's body stream (`is_user()`), with the body's own error as its source; the only
//! request body that can fail is the client's `Incoming`, whose errors are `hyper::Error`s.
//! Telling the two apart by those kinds, not by message text, keeps a client sending
//! garbage from firing anyone's upstream alert.

use std::error::Error as _;

/// True when `e` is the client's request body failing, not the upstream.
pub(crate) fn client_body_failed(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    // Bounded walk: legacy error -> hyper error (user body) -> the client's body error.
    let mut cur = e.source();
    for _ in 0..8 {
        let Some(err) = cur else { return false };
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_user()
            && h.source()
                .is_some_and(|s| s.downcast_ref::<hyper::Error>().is_some())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connect_is_not_the_clients_body() {
        // A port that was bound and released: connecting to it is refused.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let e = client
            .get(format!("http://{addr}/").parse().unwrap())
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e:?}");
        assert!(!client_body_failed(&e));
    }
}
