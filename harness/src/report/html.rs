//! The report as one self-contained HTML file: every chart inlined as a base64 PNG.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::Block;

/// tessera's one HTML escape (text and attribute values alike); markdown cells go
/// through [`crate::export::md_escape`] instead.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as one HTML file with every chart inlined as a base64 PNG, so it can
/// be mailed or archived alone.
pub fn to_html(blocks: &[Block], dir: &Path, title: &str) -> Result<String> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 4px 10px; }}\n\
         th {{ background: #f2f2f2; }}\n td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         img {{ max-width: 100%; border: 1px solid #ddd; }}\n\
         figure {{ margin: 1.5em 0; }}\n</style>\n</head>\n<body>\n",
        esc(&format!("tessera report: {title}"))
    );
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Heading(t) => {
                let h = if i == 0 { "h1" } else { "h2" };
                let _ = writeln!(s, "<{h}>{}</{h}>", esc(t));
            }
            Block::Para(t) => {
                let _ = writeln!(s, "<p>{}</p>", esc(&t.replace('`', "")));
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                s.push_str("<table>\n<tr>");
                for h in header {
                    let _ = write!(s, "<th>{}</th>", esc(h));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for (j, c) in r.iter().enumerate() {
                        let class = if numeric.get(j).copied().unwrap_or(false) {
                            " class=\"num\""
                        } else {
                            ""
                        };
                        let _ = write!(s, "<td{class}>{}</td>", esc(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Image { title, file } => {
                let path = dir.join(file);
                let bytes =
                    fs::read(&path).with_context(|| format!("reading '{}'", path.display()))?;
                let _ = writeln!(
                    s,
                    "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>",
                    esc(title),
                    base64(&bytes),
                    esc(title)
                );
            }
        }
    }
    s.push_str("</body>\n</html>\n");
    Ok(s)
}

/// Standard base64 (RFC 4648, with padding), by the `base64` crate.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }
}
