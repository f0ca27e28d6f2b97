//! Load generator: the real server binary on a fresh SQLite database (WAL, synchronous=FULL)
//! or, with `COUNTERSIGN_LOAD_POSTGRES_INSTANCES=N`, N instances on one PostgreSQL database,
//! driven end to end by enrolled software-key approvers over loopback HTTP. One complete
//! approval is: create the request (application) → approve it with an ES256 assertion
//! (approver device) → fetch the decision token (application) → redeem it once (application).
//!
//! `cargo bench -p countersign-server --bench loadgen` runs the measurement (defaults: 20,000
//! approvals, 32 concurrent approvers; override with `COUNTERSIGN_LOAD_APPROVALS` and
//! `COUNTERSIGN_LOAD_CONCURRENCY`). Under `cargo test` it runs a short smoke load, so the
//! generator itself stays tested. The same run also times the protocol crate's raw assertion
//! verification, so both numbers come from one machine state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_core::Decision;
use countersign_testkit::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOAD_CONFIG: &str = "[limits]
requests_per_minute_per_ip = 100000000
requests_per_minute_per_requester = 100000000
requests_per_minute_per_api_key = 100000000
max_pending_per_requester = 1000
max_pending_per_api_key = 100000
";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Verifications per second of one ES256 assertion through `verify_assertion`, on one core.
fn raw_verification_rate() -> f64 {
    use countersign_core::webauthn::{
        verify_assertion, AssertionInput, AssertionPolicy, ClientData, Flags,
    };
    let key = countersign_forge::ForgingKey::es256(7);
    let challenge = [9u8; 32];
    let client_data = ClientData::get(&challenge, ORIGIN).to_json();
    let assertion =
        countersign_forge::assert_with(&key, RP_ID, Flags::UP | Flags::UV, 5, &client_data);
    let public = key.public();
    let policy = AssertionPolicy {
        rp_id: RP_ID,
        origin: ORIGIN,
        challenge: &challenge,
        require_user_verification: true,
    };
    let input = AssertionInput {
        authenticator_data: &assertion.authenticator_data,
        client_data_json: &assertion.client_data_json,
        signature: &assertion.signature,
    };
    let n = 3000;
    let started = Instant::now();
    for _ in 0..n {
        verify_assertion(&public, 4, &policy, &input).unwrap();
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// One complete approval; returns its latency.
async fn one_approval(
    http: &reqwest::Client,
    server: &str,
    app_key: &str,
    approver: &Approver,
    n: usize,
) -> Duration {
    let started = Instant::now();
    let body = payout(&format!("{}-{n}", approver.id), "2500", &approver.id);
    let created: serde_json::Value = http
        .post(format!("{server}/v1/requests"))
        .bearer_auth(app_key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("create: {created}"));
    let digest = created["digest"].as_str().unwrap();

    let assertion =
        serde_json::to_vec(&approver.next_assertion(digest, Decision::Approve)).unwrap();
    let path = format!("/v1/approver/requests/{id}/approve");
    let approved = http
        .post(format!("{server}{path}"))
        .header(
            "authorization",
            approver.auth_header("POST", &path, &assertion),
        )
        .header("content-type", "application/json")
        .body(assertion)
        .send()
        .await
        .unwrap();
    assert_eq!(
        approved.status().as_u16(),
        200,
        "approve: {}",
        approved.text().await.unwrap()
    );

    let decision: serde_json::Value = http
        .get(format!("{server}/v1/requests/{id}/decision"))
        .bearer_auth(app_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(decision["token"].is_string(), "decision: {decision}");

    let redeemed = http
        .post(format!("{server}/v1/requests/{id}/redeem"))
        .bearer_auth(app_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(redeemed.status().as_u16(), 200, "redeem");
    started.elapsed()
}

/// The server's `/metrics` text.
fn metrics_text(server: &Server) -> String {
    server
        .http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// The value of the sample whose line starts with `prefix` (name, labels, space).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.parse().ok())
}

/// What the load runs against.
enum Deployment {
    /// One instance on its embedded SQLite database.
    Sqlite(Server),
    /// Instances sharing one PostgreSQL database.
    Postgres(Cluster),
}

impl Deployment {
    fn instances(&self) -> Vec<&Server> {
        match self {
            Deployment::Sqlite(server) => vec![server],
            Deployment::Postgres(cluster) => cluster.instances.iter().collect(),
        }
    }

    /// The SQLite writer's totals (PostgreSQL has no writer of ours).
    fn writer_totals(&self) -> Option<[f64; 4]> {
        match self {
            Deployment::Sqlite(server) => Some(writer_totals(server)),
            Deployment::Postgres(_) => None,
        }
    }

    /// CPU seconds of every server process.
    fn cpu_seconds(&self) -> f64 {
        self.instances().iter().map(|s| s.cpu_seconds()).sum()
    }

    fn synchronous_commit(&self) -> String {
        match self {
            Deployment::Sqlite(_) => String::new(),
            Deployment::Postgres(cluster) => {
                cluster.sql("SHOW synchronous_commit").trim().to_owned()
            }
        }
    }
}

/// The writer's totals from the server's `/metrics`: batches, jobs, busy µs, commit µs.
fn writer_totals(server: &Server) -> [f64; 4] {
    let metrics = metrics_text(server);
    [
        "batches",
        "jobs",
        "busy_microseconds",
        "commit_microseconds",
    ]
    .map(|name| {
        let prefix = format!("countersign_db_write_{name}_total ");
        sample(&metrics, &prefix).unwrap_or_else(|| panic!("/metrics has no {prefix}"))
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let total = env_or(
        "COUNTERSIGN_LOAD_APPROVALS",
        if measuring { 20_000 } else { 40 },
    );
    let concurrency = env_or(
        "COUNTERSIGN_LOAD_CONCURRENCY",
        if measuring { 32 } else { 4 },
    )
    .clamp(1, 200);

    let raw = raw_verification_rate();
    // `COUNTERSIGN_LOAD_DEDICATED_WRITER_CPU=false` measures the server without the writer's
    // own CPU (see `cpu_placement`).
    let dedicated =
        std::env::var("COUNTERSIGN_LOAD_DEDICATED_WRITER_CPU").map_or(true, |v| v != "false");
    // `COUNTERSIGN_LOAD_POSTGRES_INSTANCES=N` runs N instances on one PostgreSQL database
    // instead (workers spread over them round robin).
    let postgres_instances = env_or("COUNTERSIGN_LOAD_POSTGRES_INSTANCES", 0);
    let deployment = if postgres_instances == 0 {
        Deployment::Sqlite(Server::start_with_config(&format!(
            "{LOAD_CONFIG}\n[database]\ndedicated_writer_cpu = {dedicated}\n"
        )))
    } else {
        Deployment::Postgres(Cluster::start(postgres_instances, LOAD_CONFIG))
    };
    let instances = deployment.instances();
    let server = instances[0];
    let app_key = server.api_key("load", "payouts-service");
    let approvers: Vec<Arc<Approver>> = (0..concurrency)
        .map(|i| {
            let seed = u8::try_from(i + 1).unwrap();
            Arc::new(Approver::add_and_enroll(
                server,
                &format!("load{i}@example.com"),
                &[],
                seed,
            ))
        })
        .collect();
    let bases: Vec<String> = instances.iter().map(|s| s.base.clone()).collect();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let writes_before = deployment.writer_totals();
    let cpu_before = (deployment.cpu_seconds(), process_cpu_seconds("self"));
    let (latencies, elapsed) = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for (k, approver) in approvers.iter().enumerate() {
            let (http, base, app_key, approver, next) = (
                http.clone(),
                bases[k % bases.len()].clone(),
                app_key.clone(),
                approver.clone(),
                next.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= total {
                        return mine;
                    }
                    mine.push(one_approval(&http, &base, &app_key, &approver, n).await);
                }
            }));
        }
        let mut all = Vec::with_capacity(total);
        for w in workers {
            all.extend(w.await.unwrap());
        }
        (all, started.elapsed())
    });
    let cpu_after = (deployment.cpu_seconds(), process_cpu_seconds("self"));
    let writes = deployment.writer_totals().map(|after| {
        let before = writes_before.unwrap_or_default();
        std::array::from_fn::<f64, 4, _>(|i| after[i] - before[i])
    });
    if let Some([_, jobs, _, _]) = writes {
        assert!(
            jobs >= 3.0 * total as f64,
            "create, approve and redeem each ran a write job"
        );
    }
    let mut sorted = latencies;
    sorted.sort_unstable();
    assert_eq!(sorted.len(), total, "every approval completed");

    // Every approval left its four audit entries, and the chain verifies.
    let export = admin(&server.data_dir(), &["audit", "export"]);
    let redeemed = export.matches("\"kind\":\"decision.redeemed\"").count();
    assert_eq!(redeemed, total, "one redemption audited per approval");

    // Server-side time per route, from its own metrics.
    let metrics: Vec<String> = instances.iter().map(|s| metrics_text(s)).collect();
    let series = |name: &str, route: &str| -> f64 {
        let prefix =
            format!("countersign_http_request_duration_seconds_{name}{{route=\"{route}\"}} ");
        metrics
            .iter()
            .map(|m| sample(m, &prefix).unwrap_or(0.0))
            .sum()
    };
    let routes = [
        "/v1/requests",
        "/v1/approver/requests/{id}/approve",
        "/v1/requests/{id}/decision",
        "/v1/requests/{id}/redeem",
    ];
    let server_side: Vec<String> = routes
        .iter()
        .map(|r| {
            let mean = series("sum", r) / series("count", r).max(1.0);
            format!("{r} {:.2} ms", mean * 1e3)
        })
        .collect();

    let rate = total as f64 / elapsed.as_secs_f64();
    match &deployment {
        Deployment::Sqlite(_) => println!("loadgen: {total} complete approvals, {concurrency} concurrent approvers, SQLite WAL synchronous=FULL, dedicated writer CPU: {dedicated}"),
        Deployment::Postgres(_) => println!("loadgen: {total} complete approvals, {concurrency} concurrent approvers, {postgres_instances} instance(s) on one PostgreSQL database (synchronous_commit = {})", deployment.synchronous_commit()),
    }
    println!(
        "loadgen: {rate:.0} approvals/s over {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "loadgen: latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&sorted, 0.50).as_secs_f64() * 1e3,
        percentile(&sorted, 0.90).as_secs_f64() * 1e3,
        percentile(&sorted, 0.99).as_secs_f64() * 1e3,
        sorted[sorted.len() - 1].as_secs_f64() * 1e3,
    );
    println!(
        "loadgen: mean server time per call: {}",
        server_side.join(", ")
    );
    let per_approval = |before: f64, after: f64| (after - before) / total as f64 * 1e6;
    println!(
        "loadgen: CPU per approval: server {:.0} µs, generator {:.0} µs (generator runs on one thread: {:.0} % of a core)",
        per_approval(cpu_before.0, cpu_after.0),
        per_approval(cpu_before.1, cpu_after.1),
        (cpu_after.1 - cpu_before.1) / elapsed.as_secs_f64() * 100.0,
    );
    if let Some([batches, jobs, busy_us, commit_us]) = writes {
        println!(
            "loadgen: writer: {:.1} jobs per commit, busy {:.0} % of the run ({:.0} µs per approval, of which commit {:.0} µs)",
            jobs / batches.max(1.0),
            busy_us / 1e6 / elapsed.as_secs_f64() * 100.0,
            busy_us / total as f64,
            commit_us / total as f64,
        );
    }
    println!("loadgen: raw ES256 assertion verification (protocol crate, same run): {raw:.0}/s on one core");
}
