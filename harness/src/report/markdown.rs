//! The report as markdown: headings, paragraphs, tables (cells through
//! [`crate::export::md_escape`], the one markdown-cell escape) and linked chart files.

use std::fmt::Write as _;

use super::Block;
use crate::export::md_escape;

/// The report as markdown; images are linked by their relative path.
pub fn to_markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Heading(t) if i == 0 => {
                let _ = writeln!(s, "# {t}\n");
            }
            Block::Heading(t) => {
                let _ = writeln!(s, "## {t}\n");
            }
            Block::Para(t) => {
                let _ = writeln!(s, "{t}\n");
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                let _ = writeln!(
                    s,
                    "| {} |",
                    header
                        .iter()
                        .map(|h| md_escape(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let align: Vec<&str> = numeric
                    .iter()
                    .map(|n| if *n { "---:" } else { "---" })
                    .collect();
                let _ = writeln!(s, "| {} |", align.join(" | "));
                for r in rows {
                    let _ = writeln!(
                        s,
                        "| {} |",
                        r.iter()
                            .map(|c| md_escape(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                s.push('\n');
            }
            Block::Image { title, file } => {
                let _ = writeln!(s, "![{title}]({file})\n");
            }
        }
    }
    s
}
