//! docs/workshop.md's code blocks, by exercise: what the learner is asked to run. The test
//! that keeps the guide true runs them, and `check` quotes them when it finds no attempt
//! yet, so the commands are written once, in the guide.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Commands the learner sends (each line one command): the exercise's parts.
    Sh(Vec<String>),
    /// How to start or change the system.
    Console(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum GuideError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("docs/workshop.md: unexpected code block language {0:?}")]
    Language(String),
    #[error("docs/workshop.md: an unclosed code block")]
    Unclosed,
}

/// The guide at `root` (the project's root).
pub fn load(root: &Path) -> Result<Vec<(u32, Block)>, GuideError> {
    let path = root.join("docs/workshop.md");
    let text = std::fs::read_to_string(&path).map_err(|source| GuideError::Read {
        path: path.display().to_string(),
        source,
    })?;
    blocks(&text)
}

/// The code blocks, each with the number of the exercise (`## N.`) it belongs to.
pub fn blocks(markdown: &str) -> Result<Vec<(u32, Block)>, GuideError> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut exercise = 0;
    for line in markdown.lines() {
        if current.is_none()
            && let Some(heading) = line.strip_prefix("## ")
            && let Some(number) = heading.split('.').next().and_then(|n| n.parse().ok())
        {
            exercise = number;
        }
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), Vec::new())),
            (Some(_), Some(_)) => {
                let Some((lang, lines)) = current.take() else {
                    unreachable!("matched Some")
                };
                match lang.as_str() {
                    "sh" => out.push((exercise, Block::Sh(lines))),
                    "console" => out.push((exercise, Block::Console(lines))),
                    other => return Err(GuideError::Language(other.to_owned())),
                }
            }
            (Some((_, lines)), None) if !line.trim().is_empty() => {
                lines.push(line.trim().to_owned())
            }
            _ => {}
        }
    }
    if current.is_some() {
        return Err(GuideError::Unclosed);
    }
    Ok(out)
}

/// What to send for part `part` of `exercise`: the console block last before it in the
/// exercise (a restart the exercise needs), then its command.
pub fn what_to_send(blocks: &[(u32, Block)], exercise: u32, part: usize) -> String {
    let mut setup = Vec::new();
    let mut index = 0;
    for (_, block) in blocks.iter().filter(|(n, _)| *n == exercise) {
        match block {
            // The latest restart is the one in force.
            Block::Console(lines) => setup = lines.clone(),
            Block::Sh(lines) => {
                for line in lines {
                    if index == part {
                        return match setup.is_empty() {
                            true => format!("send `{line}`"),
                            false => format!(
                                "start the system as the exercise says (`{}`), then send `{line}`",
                                setup.join("`, `")
                            ),
                        };
                    }
                    index += 1;
                }
            }
        }
    }
    format!("run exercise {exercise}'s commands (docs/workshop.md)")
}
