//! Drawing a [`DashboardState`]: a pure function of the state onto a
//! ratatui frame, so a test backend shows exactly what a terminal would.
//!
//! ```text
//! ┌ infinicache · admin 127.0.0.1:6377 ─────────────────────────────────┐
//! │ 812.0 req/s   in 3.1 MiB/s   out 12.4 MiB/s   objects 200 (3 cold)  │
//! └─────────────────────────────────────────────────────────────────────┘
//! ┌ Function pool: 12 nodes ──────────┐┌ Memory ───────────────────────┐
//! │● ● ● ◐ ◐ ○ ○ ○ ○ ○ ○ ✖            ││██████       1.2 GiB / 11.6 GiB│
//! │                                   │└───────────────────────────────┘
//! │● serving 3  ◐ invoking 2  ...     │┌ Latency ──────────────────────┐
//! │bucket 4  active  ...              ││command  req/s  total  p50  p99│
//! ```

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table, Widget, Wrap};

use super::state::{DashboardState, NodeState};

/// How a node in `state` is drawn: a symbol, and its colour.
pub fn cell_style(state: NodeState) -> (&'static str, Color) {
    match state {
        NodeState::Serving => ("●", Color::Green),
        NodeState::Invoking => ("◐", Color::Yellow),
        NodeState::Warming => ("◔", Color::Cyan),
        NodeState::BackingUp => ("◆", Color::Blue),
        NodeState::Leaving => ("◌", Color::Magenta),
        NodeState::Idle => ("○", Color::Gray),
        NodeState::Failing => ("✖", Color::Red),
        NodeState::Unknown => ("?", Color::White),
    }
}

/// The title of the pool's panel; its grid starts just inside its border.
pub const POOL_TITLE: &str = " Function pool: ";

/// Draws the whole dashboard.
pub fn render(frame: &mut Frame, state: &DashboardState) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, state);
    let [pool, side] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    render_pool(frame, pool, state);
    let [memory, latency, invocations, cost] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(7),
        Constraint::Length(3),
    ])
    .areas(side);
    render_memory(frame, memory, state);
    render_latency(frame, latency, state);
    render_invocations(frame, invocations, state);
    render_cost(frame, cost, state);
    render_footer(frame, footer, state);
}

fn render_header(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let mut spans = match state.throughput {
        Some(throughput) => vec![
            Span::styled(
                format!("{:.1} req/s", throughput.requests_per_sec),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                "   in {}/s   out {}/s",
                bytes(throughput.bytes_in_per_sec),
                bytes(throughput.bytes_out_per_sec)
            )),
        ],
        None => vec![Span::styled(
            "throughput: waiting for a second poll",
            Style::new().fg(Color::DarkGray),
        )],
    };
    spans.push(Span::raw(format!(
        "   objects {} ({} cold)",
        state.objects, state.cold_objects
    )));
    let block = Block::bordered().title(format!(" infinicache · admin {} ", state.source));
    frame.render_widget(Paragraph::new(Line::from(spans)).block(block), area);
}

fn render_pool(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let block = Block::bordered().title(format!("{POOL_TITLE}{} nodes ", state.nodes.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let legend = legend(state);
    let buckets = bucket_lines(state);
    // The legend and the buckets take what they need; the grid the rest.
    let reserved = (1 + legend.len() + buckets.len()) as u16;
    let grid = PoolGrid {
        nodes: &state.nodes,
    };
    let grid_height = grid
        .height(inner.width)
        .min(inner.height.saturating_sub(reserved).max(1));
    let [grid_area, _, rest] = Layout::vertical([
        Constraint::Length(grid_height),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(grid, grid_area);
    let mut lines = legend;
    lines.extend(buckets);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), rest);
}

/// One line per state present (and the common ones always): its symbol,
/// name and count.
fn legend(state: &DashboardState) -> Vec<Line<'static>> {
    let mut entries = Vec::new();
    for node_state in NodeState::ALL {
        let count = state.count(node_state);
        let always = matches!(
            node_state,
            NodeState::Serving | NodeState::Invoking | NodeState::Idle | NodeState::Failing
        );
        if count == 0 && !always {
            continue;
        }
        let (symbol, color) = cell_style(node_state);
        entries.push(Span::styled(symbol, Style::new().fg(color)));
        entries.push(Span::raw(format!(" {} {count}  ", node_state.label())));
    }
    vec![Line::from(entries)]
}

/// The elastic window's buckets, oldest first, with their tier.
fn bucket_lines(state: &DashboardState) -> Vec<Line<'static>> {
    if !state.elastic {
        return Vec::new();
    }
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "window: {} buckets, {} free functions",
            state.buckets.len(),
            state.free_functions
        ),
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    for bucket in &state.buckets {
        let tier_style = match bucket.tier.as_str() {
            "active" => Style::new().fg(Color::Green),
            "degraded" => Style::new().fg(Color::Yellow),
            _ => Style::new(),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("bucket {:<4} ", bucket.id)),
            Span::styled(format!("{:<9}", bucket.tier), tier_style),
            Span::raw(format!(
                "{:>3} nodes  {} / {}  age {}s",
                bucket.nodes.len(),
                bytes(bucket.used_bytes as f64),
                bytes(bucket.capacity_bytes as f64),
                bucket.age.as_secs()
            )),
        ]));
    }
    lines
}

/// The pool as a grid of cells, one per node in id order, two columns
/// wide (one when the pool would not fit otherwise).
pub struct PoolGrid<'a> {
    pub nodes: &'a [NodeState],
}

impl PoolGrid<'_> {
    /// Columns per cell for a grid of `area`.
    fn cell_width(&self, area: Rect) -> u16 {
        let fits = |width: u16| {
            let per_row = usize::from((area.width / width).max(1));
            self.nodes.len().div_ceil(per_row) <= usize::from(area.height)
        };
        if fits(2) { 2 } else { 1 }
    }

    /// Rows the grid needs at `width` with two-column cells.
    fn height(&self, width: u16) -> u16 {
        let per_row = usize::from((width / 2).max(1));
        u16::try_from(self.nodes.len().div_ceil(per_row)).unwrap_or(u16::MAX)
    }
}

impl Widget for PoolGrid<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let cell_width = self.cell_width(area);
        let per_row = (area.width / cell_width).max(1);
        for (index, node) in self.nodes.iter().enumerate() {
            let Ok(index) = u16::try_from(index) else {
                break;
            };
            let x = area.x + (index % per_row) * cell_width;
            let y = area.y + index / per_row;
            if y >= area.bottom() {
                break;
            }
            let (symbol, color) = cell_style(*node);
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_symbol(symbol).set_fg(color);
            }
        }
    }
}

fn render_memory(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let ratio = if state.memory_capacity_bytes == 0 {
        0.0
    } else {
        (state.memory_used_bytes as f64 / state.memory_capacity_bytes as f64).clamp(0.0, 1.0)
    };
    let gauge = Gauge::default()
        .block(Block::bordered().title(" Memory "))
        .gauge_style(Style::new().fg(Color::Cyan))
        .ratio(ratio)
        .label(format!(
            "{} / {} ({:.1} %)",
            bytes(state.memory_used_bytes as f64),
            bytes(state.memory_capacity_bytes as f64),
            ratio * 100.0
        ));
    frame.render_widget(gauge, area);
}

fn render_latency(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let header = Row::new(["command", "req/s", "total", "p50", "p99"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = state.latency.iter().map(|command| {
        Row::new([
            format!("{} {}", command.frontend, command.command),
            format!("{:.1}", command.per_sec),
            command.total.to_string(),
            seconds(command.p50),
            seconds(command.p99),
        ])
    });
    let table = Table::new(
        rows,
        [
            // The figures keep their widths; the name ("native
            // put_chunk") takes the rest.
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .block(Block::bordered().title(" Latency "));
    frame.render_widget(table, area);
}

fn render_invocations(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let invocations = &state.invocations;
    let availability = &state.availability;
    let reclaims = invocations
        .reclaims
        .map_or_else(|| "n/a".to_string(), |reclaims| reclaims.to_string());
    let lines = vec![
        Line::raw(format!(
            "serve {}  warm-up {}  backup {}",
            invocations.serve, invocations.warmup, invocations.backup
        )),
        Line::raw(format!(
            "failed {}  cold starts {}  reclaims {}",
            invocations.failed, invocations.cold_starts, reclaims
        )),
        Line::raw(format!(
            "lost environments {}  failovers {}",
            invocations.lost_environments, invocations.failovers
        )),
        Line::raw(format!(
            "chunks lost {}  repaired {}  recovered {}",
            availability.chunks_lost, availability.chunks_repaired, availability.chunks_recovered
        )),
        Line::raw(format!("objects lost {}", availability.objects_lost)),
    ];
    let block = Block::bordered().title(" Invocations ");
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

fn render_cost(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let line = Line::from(vec![
        Span::raw(format!("billed {:.3} GB-s   ", state.cost.gb_seconds)),
        Span::styled(
            format!("${:.6}", state.cost.usd),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ]);
    let block = Block::bordered().title(" Cost so far ");
    frame.render_widget(Paragraph::new(line).block(block), area);
}

fn render_footer(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let line = match &state.error {
        Some(error) => Line::styled(
            format!(" poll failed: {error}"),
            Style::new().fg(Color::Red),
        ),
        None => Line::styled(" q / Esc / Ctrl-C: quit", Style::new().fg(Color::DarkGray)),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A latency: `850 µs`, `4.2 ms`, `1.20 s`, or `-` for none.
fn seconds(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::super::state::{CommandLatency, Cost, Throughput};
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(seconds(Some(0.000_85)), "850 µs");
        assert_eq!(seconds(Some(0.004_2)), "4.2 ms");
        assert_eq!(seconds(Some(1.2)), "1.20 s");
        assert_eq!(seconds(None), "-");
    }

    #[test]
    fn a_large_pool_falls_back_to_narrow_cells() {
        let nodes = vec![NodeState::Idle; 30];
        let area = Rect::new(0, 0, 10, 3);
        let mut buf = Buffer::empty(area);
        PoolGrid { nodes: &nodes }.render(area, &mut buf);
        // 30 nodes in 3 rows of 10: one column each.
        for y in 0..3 {
            for x in 0..10 {
                assert_eq!(buf[(x, y)].symbol(), "○", "({x}, {y})");
            }
        }
        // 12 would fit in wide cells: every other column.
        let nodes = vec![NodeState::Serving; 12];
        let mut buf = Buffer::empty(area);
        PoolGrid { nodes: &nodes }.render(area, &mut buf);
        assert_eq!(buf[(0, 0)].symbol(), "●");
        assert_eq!(buf[(1, 0)].symbol(), " ");
        assert_eq!(buf[(2, 1)].symbol(), "●");
    }

    #[test]
    fn the_dashboard_renders_a_known_pool() {
        // 12 nodes: 3 serving, 2 invoking, 6 idle, 1 failing, interleaved.
        use NodeState::*;
        let nodes = vec![
            Serving, Idle, Invoking, Serving, Idle, Idle, Failing, Idle, Serving, Invoking, Idle,
            Idle,
        ];
        let state = DashboardState {
            source: "127.0.0.1:6377".into(),
            nodes: nodes.clone(),
            objects: 42,
            cold_objects: 1,
            memory_used_bytes: 512 * 1024 * 1024,
            memory_capacity_bytes: 2 * 1024 * 1024 * 1024,
            throughput: Some(Throughput {
                requests_per_sec: 812.0,
                bytes_in_per_sec: 1024.0 * 1024.0,
                bytes_out_per_sec: 3.0 * 1024.0 * 1024.0,
            }),
            latency: vec![CommandLatency {
                frontend: "native".into(),
                command: "get".into(),
                total: 1000,
                per_sec: 800.0,
                p50: Some(0.000_85),
                p99: Some(0.004_2),
            }],
            cost: Cost {
                gb_seconds: 7.5,
                usd: 0.000_125,
            },
            ..DashboardState::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test terminal");
        terminal.draw(|frame| render(frame, &state)).expect("draws");
        let buffer = terminal.backend().buffer();
        let lines: Vec<String> = (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect()
            })
            .collect();

        // The grid starts just inside the pool panel's border.
        let title_row = lines
            .iter()
            .position(|line| line.contains("Function pool: 12 nodes"))
            .expect("the pool panel") as u16;
        for (i, node) in nodes.iter().enumerate() {
            let (x, y) = (1 + 2 * i as u16, title_row + 1);
            let (symbol, color) = cell_style(*node);
            let cell = &buffer[(x, y)];
            assert_eq!(cell.symbol(), symbol, "node {i}");
            assert_eq!(cell.fg, color, "node {i}");
        }
        // The contract, spelled out: serving is a green dot, failing a red cross.
        assert_eq!(buffer[(1, title_row + 1)].symbol(), "●");
        assert_eq!(buffer[(1, title_row + 1)].fg, Color::Green);
        assert_eq!(buffer[(1 + 2 * 2, title_row + 1)].fg, Color::Yellow);
        assert_eq!(buffer[(1 + 2 * 6, title_row + 1)].symbol(), "✖");
        assert_eq!(buffer[(1 + 2 * 6, title_row + 1)].fg, Color::Red);
        // Nothing after the last node.
        assert_eq!(buffer[(1 + 2 * 12, title_row + 1)].symbol(), " ");
        assert_eq!(buffer[(1, title_row + 2)].symbol(), " ");

        let text = lines.join("\n");
        for expected in [
            "serving 3",
            "invoking 2",
            "idle 6",
            "failing 1",
            "812.0 req/s",
            "in 1.0 MiB/s",
            "out 3.0 MiB/s",
            "objects 42 (1 cold)",
            "512.0 MiB / 2.0 GiB (25.0 %)",
            "native get",
            "850 µs",
            "4.2 ms",
            "billed 7.500 GB-s",
            "$0.000125",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(
            !text.contains("backing up"),
            "absent states stay out of the legend"
        );
    }

    #[test]
    fn a_failed_poll_is_shown() {
        let state = DashboardState {
            error: Some("cannot connect to 127.0.0.1:1".into()),
            ..DashboardState::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
        terminal.draw(|frame| render(frame, &state)).expect("draws");
        let buffer = terminal.backend().buffer();
        let last: String = (0..80).map(|x| buffer[(x, 23)].symbol()).collect();
        assert!(last.contains("poll failed: cannot connect"), "{last}");
        assert_eq!(buffer[(1, 23)].fg, Color::Red);
    }
}
