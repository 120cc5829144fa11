//! `meridian up`: a whole multi-region deployment on one machine, from one cluster spec.
//!
//! Start order: the control plane (its spec applied), then every region server on its own
//! loopback address, then the emulated WAN latency on the replication links, then the DNS
//! server and the gateway. Each is a separate OS process (this same executable with a role
//! subcommand) logging to `DIR/logs/NAME.log`, with its data under `DIR`.
//!
//! **Supervision.** `up` watches its children and rewrites `DIR/cluster.json` whenever a pid
//! or state changes. It never restarts a child on its own: a crash (or `meridian fault kill`)
//! stays visible in `meridian status` until `meridian fault restart NAME` asks `up`, over its
//! admin endpoint (`up.endpoint` in `cluster.json`), to start it again with the same address,
//! flags and data. Restarts therefore go through one owner and `up` never fights them.
//!
//! **Which spec.** With `--config FILE`, that spec is applied (a new version only if it
//! differs from the control plane's latest). Without it, the control plane's latest version is
//! used if there is one (so `meridian apply` survives restarts of `up`), else the built-in
//! default layout (`examples/cluster.toml`).
//!
//! **Stop.** SIGINT/SIGTERM: every child gets SIGINT (each drains and syncs), stragglers get
//! SIGKILL after 10 s, and `cluster.json` records them stopped.

mod banner;
mod supervisor;
mod tls;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use meridian_auth::{AdminGuard, AdminToken};
use meridian_control::{ClusterSpec, ControlClient, Http, SpecStore, parse_spec, region_plan};
use tokio::sync::Mutex;

use crate::cluster::{
    ClusterFile, ControlEntry, DnsEntry, GatewayEntry, ProcState, RegionEntry, UpEntry,
};
use banner::print_banner;
use supervisor::{Kind, Proc, Shared, Supervisor, serve_admin, settle, shutdown};

/// The default layout, also shipped as `examples/cluster.toml`.
pub const DEFAULT_SPEC: &str = include_str!("../../../examples/cluster.toml");

/// Flags of `meridian up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// A cluster spec (TOML, see `examples/cluster.toml`); the default three-region layout when
    /// unset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where everything is kept: each region's store, the control plane's versions, logs,
    /// `cluster.json`.
    #[arg(long, default_value = "./meridian-data")]
    data_dir: PathBuf,
    /// Log filter of `up` itself (`RUST_LOG` syntax).
    #[arg(long, env = "MERIDIAN_LOG", default_value = "info")]
    log: String,
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    // `./meridian-data` → `/cwd/meridian-data` (no `.` components in printed paths).
    Ok(full
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect())
}

/// Checks that every address the cluster needs can be bound here, before starting anything.
fn check_addresses(spec: &ClusterSpec) -> anyhow::Result<()> {
    let mut tcp: Vec<(String, SocketAddr)> = vec![
        ("control.listen".into(), spec.control.listen),
        ("dns.listen".into(), spec.dns.listen),
        ("dns.admin_listen".into(), spec.dns.admin_listen),
        ("gateway.listen".into(), spec.gateway.listen),
        ("gateway.admin_listen".into(), spec.gateway.admin_listen),
    ];
    for r in &spec.regions {
        if !r.address.is_loopback() {
            bail!(
                "region {}: `meridian up` runs a local cluster; its address {} is not a loopback address",
                r.name,
                r.address
            );
        }
        if let Err(e) = TcpListener::bind(SocketAddr::new(r.address, 0)) {
            bail!(
                "region {}: cannot bind {} ({e}). On Linux all of 127.0.0.0/8 is loopback; on macOS add it with `sudo ifconfig lo0 alias {}`",
                r.name,
                r.address,
                r.address
            );
        }
        tcp.push((format!("regions.{}.port", r.name), r.api_addr()));
        tcp.push((
            format!("regions.{}.replication_port", r.name),
            r.replication_addr(),
        ));
    }
    for (what, addr) in tcp {
        TcpListener::bind(addr).with_context(|| {
            format!("{what}: {addr} is in use (is another `meridian up` running?)")
        })?;
    }
    UdpSocket::bind(spec.dns.listen)
        .with_context(|| format!("dns.listen: UDP {} is in use", spec.dns.listen))?;
    Ok(())
}

/// Whether `meridian region` has replication flags (the replication crate is wired).
pub fn region_has_replication() -> bool {
    use clap::Args as _;
    let cmd = crate::region::RegionArgs::augment_args(clap::Command::new("region"));
    cmd.get_arguments()
        .any(|a| a.get_long() == Some("replication-listen"))
}

/// The spec to run, and its version at the control plane.
async fn choose_spec(
    client: &ControlClient,
    config: Option<&Path>,
    control_dir: &Path,
) -> anyhow::Result<(ClusterSpec, u64)> {
    if let Some(path) = config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let spec = parse_spec(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let (version, created) = client.apply(&text, true, true).await?;
        if created {
            println!(
                "meridian up: applied {} as spec version {version}",
                path.display()
            );
        }
        return Ok((spec, version));
    }
    if let Some(latest) = client.latest(None).await? {
        // The control plane serves specs without their secrets; the ones `up` starts regions
        // with are in its data directory, which `up` owns.
        let secrets = SpecStore::read_secrets(control_dir, latest.version)?;
        let text = format!("{}\n{}", latest.text, secrets.unwrap_or_default());
        let spec = parse_spec(&text)?;
        return Ok((spec, latest.version));
    }
    let (version, _) = client.apply(DEFAULT_SPEC, true, true).await?;
    Ok((parse_spec(DEFAULT_SPEC)?, version))
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let log = args.log.clone();
    crate::async_main(&log, up(args))
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = absolute(&args.data_dir)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let path = dir.join("cluster.json");
    let exe = std::env::current_exe().context("locating the meridian executable")?;
    // One admin token for the whole cluster: every component requires it on its admin
    // endpoints and presents it to the others; operator commands find it in cluster.json.
    let token_file = dir.join("secrets").join("admin-token");
    let token = Arc::new(AdminToken::load_or_create(&token_file)?);
    let token_arg = [
        "--admin-token-file".to_owned(),
        token_file.display().to_string(),
    ];
    let http = Http::new(Duration::from_secs(2)).with_token(Some(&token));

    // The spec this run starts from (checked before anything starts).
    let first_text = match &args.config {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => DEFAULT_SPEC.to_owned(),
    };
    let first = parse_spec(&first_text).map_err(|e| {
        let file = args
            .config
            .as_ref()
            .map_or("built-in spec".into(), |p| p.display().to_string());
        anyhow::anyhow!("{file}: {e}")
    })?;
    let control_url = format!("http://{}", first.control.listen);
    check_addresses(&first)?;
    let replication = region_has_replication();

    // `up`'s own admin endpoint (restarts), on an ephemeral loopback port.
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin_url = format!("http://{}", admin.local_addr()?);
    let log_of = |name: &str| dir.join("logs").join(format!("{name}.log"));

    let control_proc = Proc {
        name: "control".into(),
        kind: Kind::Control,
        args: vec![
            "control".into(),
            "--listen".into(),
            first.control.listen.to_string(),
            "--data-dir".into(),
            dir.join("control").display().to_string(),
            token_arg[0].clone(),
            token_arg[1].clone(),
        ],
        env: Vec::new(),
        log: log_of("control"),
        child: None,
        status: "starting".into(),
    };
    let file = ClusterFile {
        name: first.name.clone(),
        data_dir: dir.clone(),
        spec_version: None,
        replication,
        up: UpEntry {
            pid: std::process::id(),
            endpoint: admin_url.clone(),
        },
        control: ControlEntry {
            endpoint: control_url.clone(),
            proc: ProcState::default(),
        },
        regions: Vec::new(),
        dns: DnsEntry {
            addr: first.dns.listen.to_string(),
            name: first.dns.name.clone(),
            admin: format!("http://{}", first.dns.admin_listen),
            proc: ProcState::default(),
        },
        gateway: GatewayEntry {
            endpoint: format!("http://{}", first.gateway.listen),
            admin: format!("http://{}", first.gateway.admin_listen),
            proc: ProcState::default(),
        },
        links: BTreeMap::new(),
        admin_token_file: Some(token_file.clone()),
    };
    let sup: Shared = Arc::new(Mutex::new(Supervisor {
        exe,
        procs: vec![control_proc],
        file,
        path: path.clone(),
        spec: first.clone(),
        stopping: false,
    }));

    let started = async {
        sup.lock().await.spawn("control")?;
        settle(&sup, "control", &http).await?;
        let client =
            ControlClient::new(&control_url, Duration::from_secs(5)).with_token(Some(&token));
        let (spec, version) =
            choose_spec(&client, args.config.as_deref(), &dir.join("control")).await?;
        if spec.control.listen != first.control.listen {
            bail!("the control plane's spec moves the control plane; run `up --config FILE`");
        }
        if args.config.is_none() && spec != first {
            check_addresses_except_control(&spec)?;
        }
        add_components(
            &sup,
            &spec,
            version,
            &dir,
            &control_url,
            replication,
            &token_arg,
        )
        .await?;
        let regions: Vec<String> = spec.regions.iter().map(|r| r.name.clone()).collect();
        for name in &regions {
            sup.lock().await.spawn(name)?;
        }
        for name in &regions {
            settle(&sup, name, &http).await?;
        }
        for name in ["dns", "gateway"] {
            sup.lock().await.spawn(name)?;
            settle(&sup, name, &http).await?;
        }
        anyhow::Ok(spec)
    };
    let stop = crate::region::shutdown_signal();
    tokio::pin!(stop);
    let spec = tokio::select! {
        r = started => match r {
            Ok(spec) => spec,
            Err(e) => {
                shutdown(&sup).await;
                return Err(e);
            }
        },
        () = &mut stop => {
            shutdown(&sup).await;
            return Ok(());
        }
    };
    print_banner(&sup.lock().await.file, &spec);

    let guard = AdminGuard::Token(token.clone());
    let admin_task = tokio::spawn(serve_admin(admin, sup.clone(), http.clone(), guard));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => { sup.lock().await.reap(); }
        }
    }
    admin_task.abort();
    shutdown(&sup).await;
    println!("meridian up: stopped");
    Ok(())
}

/// A spec read from the control plane may name other addresses than the first one checked.
fn check_addresses_except_control(spec: &ClusterSpec) -> anyhow::Result<()> {
    let mut s = spec.clone();
    // The control plane is running on its address already; check everything else.
    s.control.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    check_addresses(&s)
}

/// Adds the regions, DNS server and gateway of `spec` to the supervisor and writes their
/// static config files (the roles' fallback when neither control plane nor cache is there).
async fn add_components(
    sup: &Shared,
    spec: &ClusterSpec,
    version: u64,
    dir: &Path,
    control_url: &str,
    replication: bool,
    token_arg: &[String],
) -> anyhow::Result<()> {
    let log_of = |name: &str| dir.join("logs").join(format!("{name}.log"));
    let mut s = sup.lock().await;
    s.spec = spec.clone();
    s.file.name = spec.name.clone();
    s.file.spec_version = Some(version);
    // Every link is TLS 1.3 with mutual authentication, on certificates made here.
    let certs = if replication {
        let names: Vec<(String, String)> = spec
            .regions
            .iter()
            .map(|r| (r.name.clone(), r.address.to_string()))
            .collect();
        tls::link_certificates(dir, &names).context("making the link certificates")?
    } else {
        Vec::new()
    };
    for (i, r) in spec.regions.iter().enumerate() {
        let plan = region_plan(spec, &r.name).context("region plan")?;
        let home = dir.join("regions").join(&r.name);
        let mut args = vec!["region".to_owned()];
        args.extend(plan.base_args());
        args.extend([
            "--data-dir".to_owned(),
            home.join("store").display().to_string(),
            "--state-dir".to_owned(),
            home.display().to_string(),
            "--control".to_owned(),
            control_url.to_owned(),
            // A local cluster is a test bed: `meridian fault` and the drills use the hooks.
            "--enable-fault-injection".to_owned(),
        ]);
        args.extend(token_arg.iter().cloned());
        for other in spec.regions.iter().filter(|o| o.name != r.name) {
            args.push("--ae-peer".to_owned());
            args.push(format!("{}={}", other.name, other.endpoint()));
        }
        if replication {
            args.extend(plan.replication_args());
        }
        if let Some(files) = certs.get(i) {
            args.extend(tls::flags(files));
        }
        s.file
            .links
            .insert(r.name.clone(), plan.link_delays_ms.clone());
        s.file.regions.push(RegionEntry {
            name: r.name.clone(),
            id: plan.id,
            endpoint: r.endpoint(),
            replication: r.replication_addr().to_string(),
            data_dir: home.join("store"),
            proc: ProcState::default(),
        });
        s.procs.push(Proc {
            name: r.name.clone(),
            kind: Kind::Region,
            args,
            env: plan.secret_env(replication),
            log: log_of(&r.name),
            child: None,
            status: "starting".into(),
        });
    }
    let dns_dir = dir.join("dns");
    let dns_file = dns_dir.join("dns.toml");
    let dns = meridian_control::dns_config(spec)?;
    std::fs::create_dir_all(&dns_dir)?;
    std::fs::write(&dns_file, toml::to_string(&dns)?)?;
    let gw_dir = dir.join("gateway");
    let gw_file = gw_dir.join("gateway.toml");
    let gw = meridian_control::gateway_config(spec)?;
    std::fs::create_dir_all(&gw_dir)?;
    std::fs::write(&gw_file, toml::to_string(&gw)?)?;
    for (name, kind, file, state) in [
        ("dns", Kind::Dns, dns_file, dns_dir),
        ("gateway", Kind::Gateway, gw_file, gw_dir),
    ] {
        s.procs.push(Proc {
            name: name.into(),
            kind,
            args: [
                name.to_owned(),
                "--config".to_owned(),
                file.display().to_string(),
                "--state-dir".to_owned(),
                state.display().to_string(),
                "--control".to_owned(),
                control_url.to_owned(),
            ]
            .into_iter()
            .chain(token_arg.iter().cloned())
            .collect(),
            env: Vec::new(),
            log: log_of(name),
            child: None,
            status: "starting".into(),
        });
    }
    s.file.dns.addr = spec.dns.listen.to_string();
    s.file.dns.name = spec.dns.name.trim_end_matches('.').to_owned();
    s.file.dns.admin = format!("http://{}", spec.dns.admin_listen);
    s.file.gateway.endpoint = format!("http://{}", spec.gateway.listen);
    s.file.gateway.admin = format!("http://{}", spec.gateway.admin_listen);
    s.save();
    Ok(())
}
