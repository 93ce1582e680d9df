//! `gossamer agent`: load and check the config, start the node, serve the
//! control socket, and leave gracefully on SIGINT/SIGTERM or `cluster leave`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use gossamer::Node;
use tokio::sync::mpsc;

use crate::control::{self, ControlInfo};
use crate::settings::{apply_env, control_file, explain, AgentSettings, Resolved};

/// Exit code for a refused configuration.
const EXIT_CONFIG: u8 = 2;

fn load(path: &Path) -> Result<Resolved, String> {
    let mut settings = AgentSettings::load(path).map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let unknown = apply_env(&mut settings, &env).map_err(|e| e.to_string())?;
    for var in unknown {
        if !matches!(var.as_str(), "GOSSAMER_CONFIG" | "GOSSAMER_CONTROL_FILE") {
            eprintln!(
                "gossamer: warning: unknown variable {var} ignored (known: {})",
                crate::settings::env_vars().join(", ")
            );
        }
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    settings.resolve(dir).map_err(|e| explain(e, &env))
}

/// Runs the agent until it is told to stop.
pub fn run(config: &Path) -> ExitCode {
    let resolved = match load(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gossamer: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&resolved.log) {
        // hickory-server logs every DNS query at `info`: a client (or a flood) of the `[dns]` interface
        // would fill the log. Kept at `warn` unless the filter names hickory itself.
        Ok(f) if !resolved.log.contains("hickory") => match "hickory_server=warn".parse() {
            Ok(directive) => f.add_directive(directive),
            Err(_) => f,
        },
        Ok(f) => f,
        Err(e) => {
            eprintln!("gossamer: invalid `log`: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Checked before anything starts: the control file (and its token) must not land where another
    // local user can read or replace it.
    if let Err(e) = control::prepare_data_dir(&resolved.data_dir) {
        eprintln!("gossamer: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    crate::logging::init(filter, resolved.log_format);
    if resolved.insecure {
        tracing::warn!(
            bind = %resolved.node.bind,
            "INSECURE: running without a cluster secret (insecure = true): frames are neither authenticated \
             nor encrypted, so anyone who can reach this port can join, read membership and forge it; set \
             `secret` (GOSSAMER_SECRET, `gossamer keygen` prints one) outside a trusted lab network"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gossamer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(resolved)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gossamer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(mut resolved: Resolved) -> Result<(), String> {
    let name = resolved.node.name.to_string();
    // Seed names are looked up now (and again while the node is alone, in `seeds::follow`); one that
    // does not resolve is a warning, the others are joined all the same.
    let found = crate::seeds::resolve_all(&resolved.seeds, &mut BTreeMap::new()).await;
    resolved.node.seeds = crate::seeds::same_family(found, resolved.node.bind);
    let tried = resolved.node.seeds.iter().copied().collect();
    let node = Node::start(resolved.node).await.map_err(|e| format!("cannot start: {e}"))?;
    let follow_task = tokio::spawn(crate::seeds::follow(node.clone(), resolved.seeds.clone(), tried));
    let discovering = match &resolved.discovery {
        Some(d) => match gossamer::discovery::start_discovery(&node, d) {
            Ok(running) => Some(running),
            Err(e) => {
                node.shutdown().await;
                return Err(format!("invalid discovery setting: {e}"));
            }
        },
        None => None,
    };

    // `[http]` and `[dns]`: bound before "agent ready", so a taken port is a start error.
    let http_task = match &resolved.http {
        Some(config) => match crate::http_api::bind(config).await {
            Ok(listener) => {
                tracing::info!(addr = %config.bind, "http api listening (/v1/members, /v1/health, /metrics)");
                Some(tokio::spawn(crate::http_api::serve(listener, node.clone(), config.clone())))
            }
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        },
        None => None,
    };
    let _dns = match &resolved.dns {
        Some(config) => match crate::dns::start(config.clone(), node.clone()).await {
            Ok(server) => {
                tracing::info!(addr = %server.addr, domain = %config.domain, "dns interface listening");
                Some(server)
            }
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        },
        None => None,
    };

    // `[[handlers]]`: subscribed before "agent ready", so a handler sees every event from then on.
    let handlers_task = crate::handlers::start(&node, resolved.handlers.clone());
    if !resolved.handlers.is_empty() {
        tracing::info!(handlers = resolved.handlers.len(), "event handlers ready");
    }

    let listener = tokio::net::TcpListener::bind(resolved.control_bind)
        .await
        .map_err(|e| format!("cannot bind the control socket on {}: {e}", resolved.control_bind))?;
    let token = control::new_token().map_err(|e| format!("cannot draw a control token: {e}"))?;
    let info = ControlInfo {
        addr: listener.local_addr().map_err(|e| e.to_string())?,
        token: token.clone(),
        node: name.clone(),
        pid: std::process::id(),
    };
    let path = control_file(&resolved.data_dir, &name);
    control::write_info(&path, &info).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(node = %node.id(), control = %path.display(), "agent ready");
    println!(
        "gossamer agent {} on {} (control file {}){}",
        name,
        node.addr(),
        path.display(),
        if resolved.insecure { " INSECURE: no cluster secret" } else { "" }
    );

    let (stop_tx, mut stop_rx) = mpsc::channel(1);
    let control_task = tokio::spawn(control::serve(listener, token, node.clone(), stop_tx));

    let reason = tokio::select! {
        _ = stop_rx.recv() => "left through the control socket",
        _ = terminate() => {
            let confirmed = node.leave().await.unwrap_or(false);
            tracing::info!(confirmed, "left on signal");
            "signal"
        }
        _ = node.closed() => {
            control_task.abort();
            let _ = std::fs::remove_file(&path);
            return Err("the node stopped unexpectedly".into());
        }
    };
    control_task.abort();
    follow_task.abort();
    if let Some(t) = handlers_task {
        t.abort();
    }
    if let Some(t) = http_task {
        t.abort();
    }
    if let Some(d) = discovering {
        d.shutdown().await;
    }
    node.shutdown().await;
    let _ = std::fs::remove_file(&path);
    tracing::info!(reason, "agent stopped");
    Ok(())
}

async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
