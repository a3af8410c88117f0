#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;

fn state_doc(device: &str) -> Vec<u8> {
    // Whitespace around the document, as another publisher might write it.
    format!(
        "  {{\"users\":[{{\"id\":\"u-1\",\"accountEnabled\":true,\"licensed\":true,\"groups\":[]}}],\
         \"devices\":[{{\"azureADDeviceId\":\"dev-1\",\"complianceState\":\"{device}\",\"operatingSystem\":\"iOS\"}}],\
         \"appProtectionPolicies\":[],\"appRegistrations\":[]}}\n"
    )
    .into_bytes()
}

fn batch(device: &str) -> Arc<[u8]> {
    Arc::from(
        format!(
            "{{\"devices\":[{{\"azureADDeviceId\":\"dev-1\",\"complianceState\":\"{device}\",\"operatingSystem\":\"iOS\"}}]}}"
        )
        .as_bytes(),
    )
}

fn compliant(l: &Loaded) -> bool {
    l.state.device("dev-1").unwrap().compliance.is_compliant()
}

/// A cache written by one process and read by the next (a fresh handle on the folder).
fn reread(dir: &Path) -> Result<Option<Loaded>, String> {
    RedisCache::new(dir, "fleet").load()
}

#[tokio::test]
async fn a_snapshot_and_the_batches_since_come_back_with_their_position_and_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    assert!(reread(dir.path()).unwrap().is_none(), "no file: no cache");
    let c = Arc::new(RedisCache::new(dir.path(), "fleet"));
    c.snapshot_loaded(
        "abc1",
        "10-0",
        Some(1_000),
        Arc::new(state_doc("compliant")),
    );
    c.flush().await;
    let l = reread(dir.path()).unwrap().unwrap();
    assert!(compliant(&l));
    assert_eq!(
        (
            l.snapshot.as_str(),
            l.version.as_str(),
            l.confirmed_ms,
            l.batches
        ),
        ("abc1", "10-0", 1_000, 0)
    );

    // Batches on a snapshot already on disk: the rewrite copies it from the file.
    c.advanced("11-0", vec![batch("noncompliant")], Some(2_000));
    c.flush().await;
    let l = reread(dir.path()).unwrap().unwrap();
    assert!(!compliant(&l), "the batch is in the cache");
    assert_eq!(
        (l.version.as_str(), l.confirmed_ms, l.batches),
        ("11-0", 2_000, 1)
    );

    // A handle that read the file back goes on from it (the next start after a restart).
    let next = Arc::new(RedisCache::new(dir.path(), "fleet"));
    assert!(!compliant(&next.load().unwrap().unwrap()));
    next.advanced("12-0", vec![batch("compliant")], None);
    next.confirmed(3_000);
    next.flush().await;
    let l = reread(dir.path()).unwrap().unwrap();
    assert!(compliant(&l));
    assert_eq!(
        (l.version.as_str(), l.confirmed_ms, l.batches),
        ("12-0", 3_000, 2)
    );
}

#[tokio::test]
async fn flush_writes_only_when_the_file_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(RedisCache::new(dir.path(), "fleet"));
    c.flush().await;
    assert!(
        !dir.path().join(FILE).exists(),
        "nothing loaded: nothing written"
    );
    c.snapshot_loaded(
        "abc1",
        "10-0",
        Some(1_000),
        Arc::new(state_doc("compliant")),
    );
    c.flush().await;
    let first = std::fs::read(dir.path().join(FILE)).unwrap();
    // An older confirmation read late changes nothing.
    c.confirmed(500);
    std::fs::write(dir.path().join(FILE), b"sentinel").unwrap();
    c.flush().await;
    assert_eq!(std::fs::read(dir.path().join(FILE)).unwrap(), b"sentinel");
    assert!(first.starts_with(b"{\"format\":1,"));
}

#[tokio::test]
async fn poll_writes_a_loaded_snapshot_at_once_and_batches_later() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(RedisCache::new(dir.path(), "fleet"));
    c.snapshot_loaded(
        "abc1",
        "10-0",
        Some(1_000),
        Arc::new(state_doc("compliant")),
    );
    c.poll();
    let path = dir.path().join(FILE);
    let mut written = false;
    for _ in 0..500 {
        if path.exists() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(written, "a snapshot load is written at once");
    c.flush().await; // let the background write finish
    c.advanced("11-0", vec![batch("noncompliant")], Some(2_000));
    c.poll();
    c.flush().await;
    // flush wrote the batch; poll alone would have waited BATCHES_EVERY.
    assert_eq!(reread(dir.path()).unwrap().unwrap().batches, 1);
}

async fn written(dir: &Path) -> PathBuf {
    let c = Arc::new(RedisCache::new(dir, "fleet"));
    c.snapshot_loaded(
        "abc1",
        "10-0",
        Some(1_000),
        Arc::new(state_doc("compliant")),
    );
    c.advanced("11-0", vec![batch("noncompliant")], Some(2_000));
    c.flush().await;
    dir.join(FILE)
}

fn refused(dir: &Path, want: &str) {
    match reread(dir) {
        Err(e) => assert!(e.contains(want), "{e:?} should say {want:?}"),
        Ok(l) => panic!("a bad cache was accepted ({:?})", l.map(|l| l.version)),
    }
}

#[tokio::test]
async fn a_truncated_corrupt_or_foreign_cache_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    let good = std::fs::read(&path).unwrap();
    assert!(reread(dir.path()).unwrap().is_some());

    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    refused(dir.path(), "truncated");
    std::fs::write(&path, b"").unwrap();
    refused(dir.path(), "truncated");

    // One byte of the snapshot changed, same length: the digest catches it.
    let text = String::from_utf8(good.clone()).unwrap();
    let at = text.rfind("\"compliant\"").unwrap();
    let mut bad = good.clone();
    bad[at + 1] = b'C';
    std::fs::write(&path, &bad).unwrap();
    refused(dir.path(), "SHA-256");

    let other = text.replace("\"keyPrefix\":\"fleet\"", "\"keyPrefix\":\"other\"");
    std::fs::write(&path, other).unwrap();
    refused(dir.path(), "key_prefix \"other\"");

    let format = text.replace("\"format\":1", "\"format\":2");
    std::fs::write(&path, format).unwrap();
    refused(dir.path(), "format 2");

    let version = text.replace("\"version\":\"11-0\"", "\"version\":\"eleven\"");
    std::fs::write(&path, version).unwrap();
    refused(dir.path(), "not a stream id");

    let batch = text.replace("\"noncompliant\"", "\"bogus\"");
    std::fs::write(&path, batch).unwrap();
    refused(dir.path(), "batch 0");

    let extra = text.replacen("{\"format\"", "{\"extra\":1,\"format\"", 1);
    std::fs::write(&path, extra).unwrap();
    refused(dir.path(), "unknown field");
}

#[tokio::test]
async fn a_rewrite_refuses_to_copy_a_snapshot_that_changed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    let c = Arc::new(RedisCache::new(dir.path(), "fleet"));
    assert!(c.load().unwrap().is_some());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = String::from_utf8(bytes.clone())
        .unwrap()
        .rfind("\"compliant\"")
        .unwrap();
    bytes[at + 1] = b'C';
    std::fs::write(&path, &bytes).unwrap();
    c.advanced("12-0", vec![batch("compliant")], None);
    c.flush().await;
    // The write failed and left the file as it was (still refused at load).
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    refused(dir.path(), "SHA-256");
}

#[tokio::test]
async fn batches_past_the_memory_limit_leave_the_file_at_its_older_position() {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(RedisCache::new(dir.path(), "fleet"));
    c.snapshot_loaded(
        "abc1",
        "10-0",
        Some(1_000),
        Arc::new(state_doc("compliant")),
    );
    c.flush().await;
    let huge: Arc<[u8]> = Arc::from(vec![b' '; MAX_BATCH_BYTES + 1]);
    c.advanced("11-0", vec![huge], Some(2_000));
    // Sticky until the next snapshot: a later small batch would skip the lost one.
    c.advanced("12-0", vec![batch("noncompliant")], Some(3_000));
    c.confirmed(4_000);
    c.flush().await;
    let l = reread(dir.path()).unwrap().unwrap();
    assert_eq!(
        (l.version.as_str(), l.confirmed_ms, l.batches),
        ("10-0", 1_000, 0)
    );
    assert!(compliant(&l));
    // The next snapshot load starts over.
    c.snapshot_loaded(
        "abc2",
        "13-0",
        Some(5_000),
        Arc::new(state_doc("noncompliant")),
    );
    c.flush().await;
    let l = reread(dir.path()).unwrap().unwrap();
    assert_eq!((l.snapshot.as_str(), l.version.as_str()), ("abc2", "13-0"));
    assert!(!compliant(&l));
}
