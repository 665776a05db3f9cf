//! The internal dashboard (loopback only): certificate status, request
//! counters and latency percentiles, reading statistics as an inline SVG
//! chart; and Prometheus `/metrics`.

use std::fmt::Write as _;

use crate::App;
use crate::content::{escape, page};

/// A timestamp to the second, in UTC.
fn when(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        t.date(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn fmt_dur(d: Option<std::time::Duration>) -> String {
    match d {
        Some(d) if d < std::time::Duration::from_millis(1) => format!("≤ {} µs", d.as_micros()),
        Some(d) => format!("≤ {} ms", d.as_millis()),
        None => "–".into(),
    }
}

/// The inline SVG bar chart of daily views.
pub fn chart(days: &[(time::Date, crate::stats::Day)]) -> String {
    let (w, h, pad) = (640.0_f64, 220.0_f64, 30.0_f64);
    let totals: Vec<u64> = days.iter().map(|(_, d)| d.values().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = (w - 2.0 * pad) / days.len().max(1) as f64;
    let mut svg = format!(
        r##"<svg id="views-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Article views per day">"##
    );
    let _ = write!(
        svg,
        r##"<line x1="{pad}" y1="{y}" x2="{x2}" y2="{y}" stroke="#9aa4b2"/>"##,
        y = h - pad,
        x2 = w - pad
    );
    for (i, ((date, _), total)) in days.iter().zip(&totals).enumerate() {
        let bh = (h - 2.0 * pad) * (*total as f64) / max;
        let x = pad + i as f64 * bw + bw * 0.15;
        let y = h - pad - bh;
        let _ = write!(
            svg,
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="#1f6feb"><title>{date}: {total}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#5b6472">{:02}-{:02}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{total}</text>"##,
            bw * 0.7,
            x + bw * 0.35,
            h - pad + 14.0,
            u8::from(date.month()),
            date.day(),
            x + bw * 0.35,
            (y - 4.0).max(10.0),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The dashboard page.
pub fn render(app: &App) -> String {
    let st = app.certifier_status();
    let mut body = String::from("<h1>Dashboard</h1><h2>Certificate</h2><table>");
    let s = &st.serving;
    let _ = write!(
        body,
        "<tr><th>Names</th><td>{}</td></tr><tr><th>Issuer</th><td>{}</td></tr><tr><th>Valid until</th><td>{}</td></tr><tr><th>Next renewal check</th><td>{}</td></tr><tr><th>Last result</th><td>{}</td></tr></table>",
        escape(&s.names.join(", ")),
        escape(&s.issuer),
        when(s.not_after),
        st.next_check.map(when).unwrap_or_else(|| "–".into()),
        match st.last_result() {
            Some(o) => match &o.result {
                Ok(until) => format!(
                    "<span class=\"ok\">obtained at {}, valid until {}</span>",
                    when(o.at),
                    when(*until)
                ),
                Err(e) => format!(
                    "<span class=\"bad\">failed at {}: {}</span>",
                    when(o.at),
                    escape(e)
                ),
            },
            None => "no certification yet in this run".into(),
        }
    );
    body.push_str("<h3>History</h3><table><tr><th>When</th><th>Result</th></tr>");
    for o in st.history.iter().rev() {
        let r = match &o.result {
            Ok(u) => format!(
                "<span class=\"ok\">new certificate, valid until {}</span>",
                when(*u)
            ),
            Err(e) => format!("<span class=\"bad\">{}</span>", escape(e)),
        };
        let _ = write!(body, "<tr><td>{}</td><td>{r}</td></tr>", when(o.at));
    }
    body.push_str("</table><h2>Requests</h2><table><tr><th>Server</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>p50</th><th>p90</th><th>p99</th></tr>");
    for (name, m) in [
        ("blog (HTTPS)", &app.metrics),
        ("dashboard", &app.dashboard_metrics),
    ] {
        let c = m.by_class();
        let _ = write!(
            body,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c[1],
            c[2],
            c[3],
            c[4],
            fmt_dur(m.percentile(0.5)),
            fmt_dur(m.percentile(0.9)),
            fmt_dur(m.percentile(0.99))
        );
    }
    body.push_str("</table><h2>Article views, last 7 days</h2>");
    let recent = app.stats.recent(7);
    body.push_str(&chart(&recent));
    body.push_str("<table><tr><th>Article</th><th>Views (kept days)</th></tr>");
    for (slug, n) in app.stats.totals() {
        let _ = write!(body, "<tr><td>{}</td><td>{n}</td></tr>", escape(&slug));
    }
    body.push_str("</table>");
    page("Dashboard", &body)
}

/// Prometheus text exposition.
pub fn metrics(app: &App) -> String {
    let mut out = String::new();
    out.push_str("# TYPE blog_http_responses_total counter\n# TYPE blog_http_request_duration_seconds histogram\n");
    app.metrics.prometheus("blog", &mut out);
    app.dashboard_metrics.prometheus("dashboard", &mut out);
    let st = app.certifier_status();
    out.push_str("# TYPE blog_certificate_not_after_seconds gauge\n");
    let _ = writeln!(
        out,
        "blog_certificate_not_after_seconds {}",
        st.serving.not_after.unix_timestamp()
    );
    let _ = writeln!(
        out,
        "blog_certificate_self_signed {}",
        u8::from(st.serving.self_signed)
    );
    let _ = writeln!(out, "blog_certification_failures_in_a_row {}", st.failures);
    out.push_str("# TYPE blog_article_views_total counter\n");
    for (slug, n) in app.stats.totals() {
        let _ = writeln!(
            out,
            "blog_article_views_total{{article=\"{}\"}} {n}",
            slug.replace(['"', '\\', '\n'], "_")
        );
    }
    out
}
