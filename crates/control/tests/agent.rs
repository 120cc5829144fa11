//! The control plane's API and the config agent over real loopback sockets: versions are
//! stored and served, refused specs come back with positions, and an agent keeps (and restarts
//! from) its persisted version while the control plane is down, then follows it again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_auth::{AdminGuard, AdminToken};
use meridian_control::Http;
use meridian_control::agent::{applied_path, load_applied};
use meridian_control::{
    AgentOptions, ConfigAgent, ControlClient, ControlError, ControlState, Source, SpecStore,
};
use tokio::sync::watch;

fn spec(poll_ms: u64, table: &str) -> String {
    format!(
        r#"
[[regions]]
name = "us-east"
address = "127.0.1.1"
lat = 38.9
lon = -77.4
continent = "NA"

[[tables]]
name = "{table}"
partition_key = {{ name = "pk", type = "S" }}

[control]
poll_interval_ms = {poll_ms}
"#
    )
}

/// A control plane on `addr` (port 0: any), stopped when the sender is dropped or set.
async fn control_plane(
    dir: &std::path::Path,
    addr: SocketAddr,
) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    guarded_control_plane(dir, addr, AdminGuard::LoopbackOnly).await
}

/// [`control_plane`] behind `guard`.
async fn guarded_control_plane(
    dir: &std::path::Path,
    addr: SocketAddr,
    guard: AdminGuard,
) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let store = SpecStore::open(dir).expect("store");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        meridian_control::serve(listener, ControlState::new(store).with_admin(guard), stop)
            .await
            .expect("serve");
    });
    (addr, tx, task)
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// With an admin token every route but `/health` refuses a request without it (specs hold the
/// cluster's secrets and decide where traffic goes); the typed client presents it.
#[tokio::test]
async fn every_route_but_health_needs_the_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Arc::new(
        AdminToken::load_or_create(&dir.path().join("secrets/admin-token")).expect("token"),
    );
    let (addr, stop, task) = guarded_control_plane(
        &dir.path().join("cp"),
        "127.0.0.1:0".parse().expect("addr"),
        AdminGuard::Token(token.clone()),
    )
    .await;
    let base = format!("http://{addr}");
    let anonymous = Http::new(Duration::from_secs(2));
    for path in ["/v1/specs/latest", "/v1/specs/1", "/v1/status"] {
        let r = anonymous
            .get(&format!("{base}{path}"))
            .await
            .expect("answer");
        assert_eq!(r.status, 401, "{path}");
    }
    let body = (spec(50, "users").into_bytes(), "application/toml");
    let r = anonymous
        .request(hyper::Method::POST, &format!("{base}/v1/specs"), Some(body))
        .await
        .expect("answer");
    assert_eq!(r.status, 401);
    assert_eq!(
        anonymous
            .get(&format!("{base}/health"))
            .await
            .expect("health")
            .status,
        200
    );
    let anonymous_client = ControlClient::new(&base, Duration::from_secs(2));
    assert!(anonymous_client.latest(None).await.is_err());
    let client = ControlClient::new(&base, Duration::from_secs(2)).with_token(Some(&token));
    assert_eq!(
        client
            .apply(&spec(50, "users"), false, true)
            .await
            .expect("v1"),
        (1, true)
    );
    assert_eq!(
        client
            .latest(None)
            .await
            .expect("latest")
            .map(|s| s.version),
        Some(1)
    );
    let _ = stop.send(true);
    task.await.expect("server task");
}

#[tokio::test]
async fn api_stores_versions_and_refuses_bad_specs_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, stop, task) = control_plane(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let client = ControlClient::new(&format!("http://{addr}"), Duration::from_secs(2));
    assert_eq!(client.latest(None).await.expect("latest"), None);
    assert_eq!(
        client
            .apply(&spec(50, "users"), false, true)
            .await
            .expect("v1"),
        (1, true)
    );
    assert_eq!(
        client
            .apply(&spec(50, "users"), true, true)
            .await
            .expect("same"),
        (1, false)
    );
    assert_eq!(
        client
            .apply(&spec(50, "orders"), true, true)
            .await
            .expect("v2"),
        (2, true)
    );
    match client.apply("[[regions]]\nname = 7\n", false, true).await {
        Err(ControlError::Spec(e)) => {
            assert_eq!((e.line, e.column), (Some(2), Some(8)), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        client
            .latest(None)
            .await
            .expect("latest")
            .map(|s| s.version),
        Some(2)
    );
    assert_eq!(client.latest(Some(2)).await.expect("nothing newer"), None);
    assert!(client.version(1).await.expect("v1").text.contains("users"));
    assert!(matches!(
        client.version(7).await,
        Err(ControlError::UnknownVersion(7))
    ));
    let status = client.status().await.expect("status");
    assert_eq!(status["latest_version"], 2);
    let _ = stop.send(true);
    task.await.expect("server task");
}

#[tokio::test]
async fn agent_survives_the_control_plane() {
    let cp_dir = tempfile::tempdir().expect("tempdir");
    let role_dir = tempfile::tempdir().expect("tempdir");
    let (addr, stop, task) =
        control_plane(cp_dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let url = format!("http://{addr}");
    let client = ControlClient::new(&url, Duration::from_secs(2));
    client
        .apply(&spec(50, "users"), false, true)
        .await
        .expect("v1");
    let opts = AgentOptions {
        component: "region/us-east".into(),
        control_url: Some(url.clone()),
        dir: role_dir.path().to_path_buf(),
        bootstrap_timeout: Duration::from_millis(300),
        token: None,
    };

    // Start with the control plane up: version 1 from the control plane, applied, persisted,
    // reported.
    let agent = Arc::new(ConfigAgent::start(opts.clone()).await);
    let st = agent.status();
    assert_eq!((st.version, st.source), (Some(1), Source::Control));
    let applied = Arc::new(Mutex::new(Vec::new()));
    let (stop_agent, mut stop_rx) = watch::channel(false);
    let run = tokio::spawn({
        let applied = applied.clone();
        agent.clone().run(
            move |a, _first| {
                applied.lock().expect("lock").push(a.version);
                async { Ok(()) }
            },
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        )
    });
    eventually("v1 persisted", || applied_path(role_dir.path()).exists()).await;
    let persisted = load_applied(role_dir.path()).expect("load").expect("some");
    assert_eq!(persisted.version, 1);
    let status = client.status().await.expect("status");
    assert_eq!(status["components"]["region/us-east"]["version"], 1);

    // The control plane goes away: the running agent keeps version 1.
    let _ = stop.send(true);
    task.await.expect("server task");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = agent.status();
    assert_eq!((st.version, st.control_reachable), (Some(1), false));
    let _ = stop_agent.send(true);
    run.await.expect("agent task");

    // A restart while it is away starts from the persisted copy.
    let agent = Arc::new(ConfigAgent::start(opts.clone()).await);
    let st = agent.status();
    assert_eq!((st.version, st.source), (Some(1), Source::Cache));

    // The control plane returns (same address) with a new version: the agent follows.
    let (_, stop, task) = control_plane(cp_dir.path(), addr).await;
    client
        .apply(&spec(50, "orders"), false, true)
        .await
        .expect("v2");
    let (stop_agent, mut stop_rx) = watch::channel(false);
    let run = tokio::spawn({
        let applied = applied.clone();
        agent.clone().run(
            move |a, _first| {
                applied.lock().expect("lock").push(a.version);
                async { Ok(()) }
            },
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        )
    });
    eventually("v2 applied", || agent.status().version == Some(2)).await;
    assert_eq!(agent.status().source, Source::Control);
    eventually("v2 persisted", || {
        load_applied(role_dir.path())
            .ok()
            .flatten()
            .is_some_and(|s| s.version == 2)
    })
    .await;
    assert_eq!(*applied.lock().expect("lock"), [1, 1, 2]);
    let _ = stop_agent.send(true);
    run.await.expect("agent task");
    let _ = stop.send(true);
    task.await.expect("server task");
}
