//! The window's Tauri commands through Tauri's mock runtime, against the
//! real desktop core API (the daemon's routes plus `/api/desktop/`) over a
//! real engine with a sled store in a temp dir: the dashboard's calls reach
//! the engine and answer the JSON the dashboard expects, errors included.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};
use tokio_util::sync::CancellationToken;
use tuber_desktop::core::{routes, Desktop, WindowControl};
use tuber_desktop::window::{commands, Backend};
use tuber_peer::daemon::api::{router_with, ApiState};
use tuber_peer::daemon::client::DaemonClient;
use tuber_peer::daemon::files::{self, ApiInfo};
use tuber_peer::desktop::{AutostartEntry, DesktopPrefs, JoinLink};
use tuber_peer::{Engine, EngineConfig};

struct Fixture {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    engine: Engine,
    desktop: Arc<Desktop>,
    _closing: tokio_util::sync::DropGuard,
}

/// The core (engine + API on 127.0.0.1:0) and a mock window using it.
fn fixture(dir: &Path, link: Option<JoinLink>) -> Fixture {
    let data = dir.join("data");
    let engine = tauri::async_runtime::block_on(Engine::start(EngineConfig::new(&data))).unwrap();
    let desktop = Arc::new(Desktop {
        engine: engine.clone(),
        config_dir: dir.join("config"),
        data_dir: data.clone(),
        prefs: Mutex::new(DesktopPrefs::load(&dir.join("config"))),
        pending_link: Mutex::new(link),
        autostart: AutostartEntry::in_dir(&dir.join("autostart"), "/usr/bin/tuber-desktop".into()),
        windows: WindowControl::new(dir.join("no-window-program"), data.clone()),
    });
    let token = files::ensure_token(&data).unwrap();
    let closing = CancellationToken::new();
    let listener =
        tauri::async_runtime::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router_with(
        ApiState::new(engine.clone(), token, port, closing.clone()),
        routes(desktop.clone()),
    );
    let stop = closing.clone();
    tauri::async_runtime::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    files::write_api_info(
        &data,
        &ApiInfo {
            url: format!("http://127.0.0.1:{port}"),
            pid: std::process::id(),
        },
    )
    .unwrap();
    let client = Arc::new(DaemonClient::for_data_dir(&data).unwrap());
    let app = mock_builder()
        .manage(Backend {
            client,
            connected: Default::default(),
        })
        .invoke_handler(commands::handler())
        .build(mock_context(noop_assets()))
        .unwrap();
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Fixture {
        _app: app,
        window,
        engine,
        desktop,
        _closing: closing.drop_guard(),
    }
}

/// Invokes `cmd` with `args` as the dashboard does; Ok(answer) or Err(error).
fn call(f: &Fixture, cmd: &str, args: Value) -> Result<Value, Value> {
    tauri::test::get_ipc_response(
        &f.window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<Value>().unwrap())
}

#[test]
fn engine_calls_answer_the_dashboards_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path(), None);

    let status = call(&f, "status", json!({})).unwrap();
    assert_eq!(status["peer_id"], json!(f.engine.peer_id()));
    assert_eq!(status["swarms"], json!([]));
    assert_eq!(call(&f, "swarms", json!({})).unwrap(), json!([]));

    let s = call(
        &f,
        "update_settings",
        json!({"patch": {"upload_bps": 2_000_000, "disk_budget": 1_073_741_824u64}}),
    )
    .unwrap();
    assert_eq!(
        (s["upload_bps"].as_u64(), s["disk_budget"].as_u64()),
        (Some(2_000_000), Some(1 << 30))
    );
    assert_eq!(
        f.engine.settings().upload_bps,
        2_000_000,
        "the engine itself changed"
    );
    assert_eq!(call(&f, "pause", json!({})).unwrap()["paused"], json!(true));
    assert!(f.engine.settings().paused);
    assert_eq!(
        call(&f, "resume", json!({})).unwrap()["paused"],
        json!(false)
    );
    assert_eq!(
        call(&f, "settings", json!({})).unwrap()["upload_bps"],
        json!(2_000_000)
    );

    let h = call(&f, "history", json!({})).unwrap();
    assert!(h["seconds"].is_array() && h["minutes"].is_array(), "{h}");
    assert_eq!(call(&f, "cached", json!({})).unwrap(), json!([]));
    assert_eq!(
        call(&f, "events_connected", json!({})).unwrap(),
        json!(false),
        "no event relay in this test"
    );
}

#[test]
fn errors_carry_a_message_and_the_apis_status() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path(), None);

    // A disk budget below one piece is bad input, not a crash.
    let e = call(&f, "update_settings", json!({"patch": {"disk_budget": 1}})).unwrap_err();
    assert_eq!(e["status"], json!(400), "{e}");
    assert!(e["message"].as_str().unwrap().contains("budget"), "{e}");
    // Leaving a swarm never joined.
    let e = call(&f, "leave", json!({"url": "http://127.0.0.1:9/"})).unwrap_err();
    assert_eq!(e["status"], json!(404), "{e}");
    // Not a URL.
    let e = call(&f, "join", json!({"url": "not a url", "invite": null})).unwrap_err();
    assert_eq!(e["status"], json!(400), "{e}");
    assert!(call(&f, "status", json!({})).unwrap()["swarms"]
        .as_array()
        .unwrap()
        .is_empty());
    // Missing and mistyped arguments are refused by the IPC layer.
    assert!(call(&f, "evict", json!({"swarm": 1})).is_err());
    assert!(call(&f, "update_settings", json!({"patch": {"bogus": 1}})).is_err());
}

#[test]
fn desktop_prefs_autostart_data_dir_and_deep_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = JoinLink {
        swarm: "http://127.0.0.1:8080/".into(),
        invite: Some("t0k".into()),
    };
    let f = fixture(dir.path(), Some(link.clone()));

    let v = call(&f, "desktop_prefs", json!({})).unwrap();
    assert_eq!(v["autostart"], Value::Null, "first run: not asked yet");
    assert_eq!(v["autostart_enabled"], json!(false));
    assert_eq!(
        v["data_dir"],
        json!(dir.path().join("data").display().to_string())
    );

    let v = call(&f, "set_autostart", json!({"enabled": true})).unwrap();
    assert_eq!(
        (v["autostart"].clone(), v["autostart_enabled"].clone()),
        (json!(true), json!(true))
    );
    assert!(f.desktop.autostart.enabled(), "the autostart entry exists");
    assert_eq!(
        DesktopPrefs::load(&dir.path().join("config")).autostart,
        Some(true),
        "saved"
    );
    let v = call(&f, "set_autostart", json!({"enabled": false})).unwrap();
    assert_eq!(v["autostart_enabled"], json!(false));
    assert!(!f.desktop.autostart.enabled());

    let e = call(&f, "set_data_dir", json!({"dir": "relative/dir"})).unwrap_err();
    assert_eq!(e["status"], json!(400));
    let next = dir.path().join("elsewhere");
    let v = call(
        &f,
        "set_data_dir",
        json!({"dir": next.display().to_string()}),
    )
    .unwrap();
    assert_eq!(v["data_dir_next"], json!(next.display().to_string()));
    assert_eq!(
        DesktopPrefs::load(&dir.path().join("config")).data_dir,
        Some(next)
    );

    let got = call(&f, "take_join_link", json!({})).unwrap();
    assert_eq!(got, json!({"swarm": link.swarm, "invite": "t0k"}));
    assert_eq!(
        call(&f, "take_join_link", json!({})).unwrap(),
        Value::Null,
        "taken once"
    );
}
