//! docs/workshop.md's code blocks, by exercise: what the learner is asked to run. The test
//! that keeps the guide true runs them, and `check` quotes them when it finds no attempt
//! yet, so the commands are written once, in the guide. The guide is compiled into the
//! binary: in the image, `check` has no checkout to read it from.

/// docs/workshop.md, as built.
pub const GUIDE: &str = include_str!("../../docs/workshop.md");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Commands the learner sends (each line one command): the exercise's parts.
    Sh(Vec<String>),
    /// How to start or change the system.
    Console(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum GuideError {
    #[error("docs/workshop.md: unexpected code block language {0:?}")]
    Language(String),
    #[error("docs/workshop.md: an unclosed code block")]
    Unclosed,
}

/// The exercises' numbers and titles, from their headings (`## N. Title`).
pub fn titles(markdown: &str) -> Vec<(u32, String)> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|heading| {
            let (number, title) = heading.split_once(". ")?;
            Some((number.parse().ok()?, title.trim().to_owned()))
        })
        .collect()
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
