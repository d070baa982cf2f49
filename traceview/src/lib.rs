//! Traces without Jaeger: spans arrive over OTLP, are grouped by trace, and once a trace has
//! been quiet for a moment it is printed as an indented waterfall. Jaeger stays the real
//! backend; this is the first look for a laptop that cannot run Docker.

mod assemble;
mod render;

pub use assemble::{Assembler, Trace};
pub use render::{Filter, RenderOptions, render_json, render_text};
