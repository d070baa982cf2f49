//! Project tasks: the commands `up` (the Docker-less runner), `soak` and `bench` (and
//! `check`, which is the workshop crate's), over the
//! modules they share. `compose` reads docker-compose.yml and .env the way compose does, so
//! every command starts the binaries with the very environment compose gives them;
//! `cargo` builds them, `database` prepares Postgres, `process` runs and stops them, and
//! `system` holds what soak and bench measure with. Commands use the shared modules, never
//! each other.

pub mod bench;
mod cargo;
pub mod compose;
mod database;
mod process;
pub mod python;
pub mod soak;
mod system;
pub mod up;
