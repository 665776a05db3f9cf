//! Articles: Markdown with a small front matter, embedded in the binary and
//! rendered to HTML once at start.

use pulldown_cmark::{Options, Parser, html};

/// One article.
#[derive(Debug, Clone)]
pub struct Article {
    /// URL slug (the file name).
    pub slug: String,
    /// Title from the front matter.
    pub title: String,
    /// Date from the front matter (YYYY-MM-DD).
    pub date: String,
    /// Rendered HTML body.
    pub html: String,
}

const SOURCES: &[(&str, &str)] = &[
    (
        "in-process-https",
        include_str!("../content/in-process-https.md"),
    ),
    ("local-ca", include_str!("../content/local-ca.md")),
    ("reading-stats", include_str!("../content/reading-stats.md")),
];

/// The stylesheet.
pub const STYLE_CSS: &str = include_str!("../static/style.css");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn parse(slug: &str, src: &str) -> Article {
    let (mut title, mut date, mut body) = (slug.to_owned(), String::new(), src);
    if let Some(rest) = src.strip_prefix("---\n") {
        if let Some((front, after)) = rest.split_once("\n---\n") {
            for line in front.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    match k.trim() {
                        "title" => title = v.trim().to_owned(),
                        "date" => date = v.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            body = after;
        }
    }
    let mut html_out = String::new();
    html::push_html(
        &mut html_out,
        Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH),
    );
    Article {
        slug: slug.to_owned(),
        title,
        date,
        html: html_out,
    }
}

/// All articles, newest first.
pub fn articles() -> Vec<Article> {
    let mut v: Vec<Article> = SOURCES.iter().map(|(s, src)| parse(s, src)).collect();
    v.sort_by(|a, b| b.date.cmp(&a.date));
    v
}

/// Wraps a page body in the site layout.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/style.css"></head>
<body><header><a class="brand" href="/">Integrated Operations</a> <span class="meta">— a blog that certifies itself</span></header>
<main>{body}</main>
<footer>Served over HTTPS by a certificate this process obtained itself, with site-encrypt.</footer></body></html>"#,
        title = escape(title)
    )
}

/// The index page.
pub fn index_page(articles: &[Article]) -> String {
    let mut items = String::new();
    for a in articles {
        items.push_str(&format!(
            r#"<li><a href="/articles/{slug}">{title}</a><div class="meta">{date}</div></li>"#,
            slug = escape(&a.slug),
            title = escape(&a.title),
            date = escape(&a.date)
        ));
    }
    page(
        "Integrated Operations",
        &format!("<h1>Articles</h1><ul class=\"posts\">{items}</ul>"),
    )
}

/// An article page.
pub fn article_page(a: &Article) -> String {
    page(
        &a.title,
        &format!(
            "<article><h1>{}</h1><div class=\"meta\">{}</div>{}</article><p><a href=\"/\">← All articles</a></p>",
            escape(&a.title),
            escape(&a.date),
            a.html
        ),
    )
}

/// The 404 page.
pub fn not_found_page() -> String {
    page(
        "Not found",
        "<h1>Not found</h1><p>There is no page here. <a href=\"/\">Back to the articles.</a></p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_render() {
        let a = articles();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].slug, "reading-stats", "newest first");
        assert!(
            a.iter()
                .all(|x| x.html.contains("<p>") && !x.title.is_empty())
        );
        assert!(a.iter().any(|x| x.html.contains("<pre><code")));
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
