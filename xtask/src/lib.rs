//! Project tasks: the commands `up` (the Docker-less runner), `check` (a learner's answer to
//! a workshop exercise, read from Jaeger), `soak` and `bench`, over the
//! modules they share. `compose` reads docker-compose.yml and .env the way compose does, so
//! every command starts the binaries with the very environment compose gives them;
//! `cargo` builds them, `database` prepares Postgres, `process` runs and stops them, and
//! `system` holds what soak and bench measure with. Commands use the shared modules, never
//! each other.

pub mod bench;
mod cargo;
pub mod check;
pub mod compose;
mod database;
mod process;
pub mod soak;
mod system;
pub mod up;
