//! The live dashboard against a real proxy: its state is built from a real
//! `/status` and `/metrics`, and rendered to a test backend.

use std::time::Duration;

use infinicache_cli::dashboard::state::NodeState;
use infinicache_cli::dashboard::view::{self, cell_style};
use infinicache_cli::dashboard::{AdminClient, Poller};
use infinicache_tests::harness::{TestCache, random_bytes};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[tokio::test]
async fn the_dashboard_shows_a_live_pool() {
    let cache = TestCache::small(&[]).await;
    assert!(
        cache.metrics_addr.is_none(),
        "the ready line has no metrics= without --metrics-listen"
    );
    let client = cache.client(4, 2).await;
    let data = random_bytes(256 * 1024);
    client.put("shown", data.clone()).await.expect("PUT");

    let admin = AdminClient::new(cache.admin_addr.to_string(), Duration::from_secs(30));
    let mut poller = Poller::new(admin);
    let first = poller.poll().await.expect("first poll");
    assert_eq!(first.nodes.len(), 6);
    assert!(first.throughput.is_none(), "a rate needs two polls");
    assert!(
        !first.nodes.contains(&NodeState::Unknown),
        "the dashboard knows every state the proxy reports: {:?}",
        first.nodes
    );

    for _ in 0..3 {
        assert_eq!(client.get("shown").await.expect("GET"), Some(data.clone()));
    }
    let state = poller.poll().await.expect("second poll");
    let throughput = state.throughput.expect("a rate after two polls");
    assert!(throughput.requests_per_sec > 0.0);
    assert!(throughput.bytes_out_per_sec > 0.0);
    assert_eq!(state.objects, 1);
    assert!(state.memory_used_bytes > 0);
    assert!(state.memory_capacity_bytes > state.memory_used_bytes);
    assert!(
        state.memory_capacity_bytes <= 6 << 30,
        "six functions of 1 GiB"
    );
    assert!(state.invocations.serve >= 1);
    assert!(state.invocations.reclaims.is_some(), "the local platform's");
    let get = state
        .latency
        .iter()
        .find(|command| command.frontend == "native" && command.command == "get")
        .expect("native GETs in the latency table");
    assert!(get.total >= 3);
    assert!(get.p50.is_some() && get.p99.is_some());
    assert!(state.elastic, "the harness's cache has an object store");
    assert!(!state.buckets.is_empty(), "the PUT opened a bucket");

    let mut terminal = Terminal::new(TestBackend::new(110, 32)).expect("test terminal");
    terminal
        .draw(|frame| view::render(frame, &state))
        .expect("draws");
    let buffer = terminal.backend().buffer();
    let lines: Vec<String> = (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect()
        })
        .collect();
    let text = lines.join("\n");
    let title_row = lines
        .iter()
        .position(|line| line.contains("Function pool: 6 nodes"))
        .unwrap_or_else(|| panic!("no pool panel in\n{text}")) as u16;
    for (i, node) in state.nodes.iter().enumerate() {
        let cell = &buffer[(1 + 2 * i as u16, title_row + 1)];
        let (symbol, color) = cell_style(*node);
        assert_eq!(
            (cell.symbol(), cell.fg),
            (symbol, color),
            "node {i}\n{text}"
        );
    }
    for expected in [
        format!("admin {}", cache.admin_addr),
        "objects 1 (".to_string(),
        "native get".to_string(),
        "active".to_string(),
        "GB-s".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in\n{text}");
    }
}
